-- Secondary indexes of the bulk-loaded tables that `zhurnal generate` sets aside while it
-- loads an empty database (BulkStore::bulk_begin): the statement that re-creates each, run in
-- `seq` order by bulk_finish, which then empties the table. A row left here means a generation
-- stopped halfway and the database lacks the index the row re-creates.

CREATE TABLE bulk_deferred (
    seq INTEGER PRIMARY KEY,
    ddl TEXT NOT NULL
);
