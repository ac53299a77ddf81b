-- The client ts of the report that gave position_ms (ts_ms is the newest
-- report of any kind, a play without position included). History keeps
-- these two maxima apart; with both here, a re-warm after Redis lost its
-- data joins ClickHouse's row with newer reports exactly, instead of
-- treating the position as reported at ts_ms. Rows written before this
-- column existed read it as ts_ms, what re-warms assumed until then.
ALTER TABLE {db}.progress ADD COLUMN position_ts_ms UInt64 DEFAULT ts_ms;
