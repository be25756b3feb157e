-- Signed report bundles (issue 9): the bundle's bytes are kept, so a download later is
-- byte-for-byte the bundle that was signed. Reports are never edited or deleted.
CREATE TABLE report (
    id                  uuid PRIMARY KEY,
    created_at          timestamptz NOT NULL,
    created_by          text NOT NULL,
    programme           text NOT NULL,
    tier                text NOT NULL,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    window_spec         text,
    include_simulated   boolean NOT NULL,
    verdict             text NOT NULL,
    manifest_sha256     text NOT NULL CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    key_fingerprint     text NOT NULL CHECK (key_fingerprint ~ '^[0-9a-f]{64}$'),
    bundle_sha256       text NOT NULL CHECK (bundle_sha256 ~ '^[0-9a-f]{64}$'),
    bundle              bytea NOT NULL
);
CREATE INDEX report_created_idx ON report (created_at DESC, id);

CREATE FUNCTION report_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'report % cannot be edited or deleted; make a new report', OLD.id;
END
$$;

CREATE TRIGGER report_append_only
    BEFORE UPDATE OR DELETE ON report
    FOR EACH ROW EXECUTE FUNCTION report_append_only();
