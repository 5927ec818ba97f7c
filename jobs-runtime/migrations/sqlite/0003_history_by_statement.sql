-- Numbered as the PostgreSQL migration that moves the history from
-- triggers into the moving statements. SQLite keeps its row triggers: they
-- run inside the engine, without a procedural language or transition
-- tables, and cost little; nothing changes here.
SELECT 1;
