-- Every instance caches the registered clients and the signing keys. A
-- change to either, whoever makes it (another instance, `idp client ...`,
-- `idp keys rotate`, plain SQL), bumps its topic's generation here, in the
-- same transaction as the change; each instance reads this table once a
-- second and drops what it cached of a topic whose generation moved.
CREATE TABLE change_generations (
    topic      TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO change_generations (topic, generation) VALUES ('clients', 1), ('signing_keys', 1);

-- SQLite's triggers are per row: a statement changing n rows bumps n times,
-- which is all the readers need (the number moved).
CREATE TRIGGER clients_inserted AFTER INSERT ON clients BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'clients';
END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'clients';
END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'clients';
END;
CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'signing_keys';
END;
CREATE TRIGGER signing_keys_updated AFTER UPDATE ON signing_keys BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'signing_keys';
END;
CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = 'signing_keys';
END;
