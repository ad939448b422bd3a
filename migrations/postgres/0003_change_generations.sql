-- Every instance caches the registered clients and the signing keys. A
-- change to either, whoever makes it (another instance, `idp client ...`,
-- `idp keys rotate`, plain SQL), bumps its topic's generation here, in the
-- same transaction as the change; each instance reads this table once a
-- second and drops what it cached of a topic whose generation moved.
CREATE TABLE change_generations (
    topic      text PRIMARY KEY,
    generation bigint NOT NULL
);
INSERT INTO change_generations (topic, generation) VALUES ('clients', 1), ('signing_keys', 1);

-- Per row, as on SQLite: a statement that changes nothing (an UPDATE or a
-- DELETE of an unknown id) bumps nothing, and one that changes n rows bumps
-- n times, which is all the readers need (the number moved). TG_ARGV[0] is
-- the topic. TRUNCATE has only statement triggers.
CREATE FUNCTION bump_change_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = TG_ARGV[0];
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION bump_change_generation('clients');
CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_generation('clients');
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION bump_change_generation('signing_keys');
CREATE TRIGGER signing_keys_truncated AFTER TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_generation('signing_keys');
