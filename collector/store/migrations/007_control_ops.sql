-- Verified control operations (issue 6): the point key asked for is kept even when the
-- point is unknown or later removed (point_id is then NULL), and managed-device counts
-- find a device's verified operations in a window by index.
ALTER TABLE control_op ADD COLUMN point_key text;
CREATE INDEX control_op_verified_device_idx ON control_op (device_id, requested_at)
    WHERE outcome = 'verified';
CREATE INDEX control_op_time_idx ON control_op (requested_at);
