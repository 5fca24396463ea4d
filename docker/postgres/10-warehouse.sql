-- Runs once, when the postgres volume is first created: the warehouse that models are built into
-- is a database of its own, so nothing a model runs can reach the portal's tables.
CREATE DATABASE warehouse OWNER dmaas;
