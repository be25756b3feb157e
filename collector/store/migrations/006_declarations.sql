-- Declarations are versioned: an operator's statement is never overwritten. Each key
-- (e.g. `staff` or a rule id) has versions 1, 2, ...; a new version supersedes the
-- current one, which keeps its row and is stamped superseded_at / superseded_by. A
-- declaration targets a rule, a clause or a declared figure (metric), optionally
-- narrowed to a programme and tier, so program, tier and clause become optional.
ALTER TABLE declaration
    ALTER COLUMN program DROP NOT NULL,
    ALTER COLUMN tier DROP NOT NULL,
    ALTER COLUMN clause DROP NOT NULL,
    ADD COLUMN key text,
    ADD COLUMN version integer CHECK (version IS NULL OR version >= 1),
    ADD COLUMN rule text,
    ADD COLUMN not_applicable boolean NOT NULL DEFAULT false,
    ADD COLUMN superseded_at timestamptz,
    ADD COLUMN superseded_by bigint REFERENCES declaration (id) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT declaration_key_version_uniq UNIQUE (key, version),
    ADD CONSTRAINT declaration_target_chk CHECK (
        key IS NULL OR rule IS NOT NULL OR clause IS NOT NULL OR metric IS NOT NULL),
    ADD CONSTRAINT declaration_evidence_chk CHECK (btrim(evidence_ref) <> '');

-- At most one current version per key. A new version is put by first superseding the
-- current one (pointing at the new row's id, hence the deferred foreign key), then inserting.
CREATE UNIQUE INDEX declaration_current_idx ON declaration (key) WHERE superseded_at IS NULL;

-- History is append-only: a row may only be superseded (once); it is never edited or deleted.
CREATE FUNCTION declaration_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'declaration % (key %, version %) cannot be deleted; put a new version',
            OLD.id, OLD.key, OLD.version;
    END IF;
    IF OLD.superseded_at IS NOT NULL
       OR (to_jsonb(NEW) - 'superseded_at' - 'superseded_by')
          IS DISTINCT FROM (to_jsonb(OLD) - 'superseded_at' - 'superseded_by') THEN
        RAISE EXCEPTION 'declaration % (key %, version %) cannot be edited; put a new version',
            OLD.id, OLD.key, OLD.version;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER declaration_append_only
    BEFORE UPDATE OR DELETE ON declaration
    FOR EACH ROW EXECUTE FUNCTION declaration_append_only();
