-- How far each aggregator sink has written, per Kafka partition. The
-- aggregator holds onair.progress rows for --progress-flush (collapsing
-- repeated reports of one item into one row); this records the offset up to
-- which those rows are in ClickHouse, so a restart replays from
-- min(progress offset, events watermark) and loses nothing. Written after
-- the rows it covers; read with max(offset).
CREATE TABLE IF NOT EXISTS {db}.aggregate_offsets (
    topic     String,
    partition UInt32,
    sink      String,
    offset    UInt64,
    at        DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(offset)
ORDER BY (topic, partition, sink);
