package io.featurestream.kinesis;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.metric.CustomTaskMetric;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.unsafe.types.UTF8String;

import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.kinesis.retrieval.AggregatorUtil;
import software.amazon.kinesis.retrieval.KinesisClientRecord;

/**
 * Reads one shard's part of one batch on an executor.
 *
 * <p>First attempt of the batch ("fresh"): read from the start until the record limit, the
 * shard's end, or the tip of the shard, then record that end before reporting the partition
 * exhausted, i.e. before the task's output can be committed. Any later attempt ("replay") finds
 * the record and reads up to exactly the recorded sequence number.
 */
final class KinesisShardReader implements PartitionReader<InternalRow> {
    private static final int MAX_REPLAY_EMPTY_POLLS = 1_000;

    private final KinesisInputPartition partition;
    private final KinesisOptions options;
    private final ShardFetcher fetcher;
    private final BatchEnd recorded;
    private final BigInteger replayTarget;
    private final AggregatorUtil deaggregator = new AggregatorUtil();
    private final UTF8String streamName;
    private final UTF8String shardId;

    private Iterator<KinesisClientRecord> page = Collections.emptyIterator();
    private InternalRow current;
    private boolean done;
    private boolean ended;

    private long kinesisRecords;
    private String lastSequenceNumber;
    private long lastArrivalMillis = -1;
    private long millisBehindLatest = -1;
    private long observedAtMillis = -1;
    private boolean caughtUp;
    private int emptyPolls;

    KinesisShardReader(KinesisInputPartition partition) {
        this.partition = partition;
        this.options = partition.options();
        this.fetcher = new ShardFetcher(KinesisClients.get(options), options, partition.shardId(),
                partition.start());
        this.recorded = partition.store().read(partition.epoch(), partition.shardId());
        this.replayTarget = recorded == null || recorded.lastSequenceNumber() == null
                ? null : new BigInteger(recorded.lastSequenceNumber());
        // a replay of a range with no records has nothing to fetch
        this.done = recorded != null && replayTarget == null;
        this.streamName = UTF8String.fromString(options.streamName());
        this.shardId = UTF8String.fromString(partition.shardId());
    }

    @Override
    public boolean next() {
        while (true) {
            if (page.hasNext()) {
                current = toRow(page.next());
                return true;
            }
            if (done) {
                end();
                return false;
            }
            if (recorded == null) {
                fetchFresh();
            } else {
                fetchReplay();
            }
        }
    }

    private void fetchFresh() {
        int requested = (int) Math.min(options.maxRecordsPerCall(), options.maxRecordsPerShard() - kinesisRecords);
        GetRecordsResponse response = fetcher.fetch(requested);
        List<Record> records = response.records();
        observe(response, records);
        // no millisBehindLatest at all (not seen from Kinesis itself): an empty page means the tip
        boolean atTip = millisBehindLatest == 0 || (millisBehindLatest < 0 && records.isEmpty());
        if (fetcher.exhausted()) {
            done = true;
        } else if (records.isEmpty()) {
            // Kinesis can return empty pages while behind (a quiet stretch of the shard); keep
            // paging through it, up to a bound, since the next batch would restart before it
            emptyPolls++;
            done = atTip || emptyPolls >= options.maxEmptyPolls();
        } else {
            emptyPolls = 0;
            done = kinesisRecords >= options.maxRecordsPerShard() || (atTip && records.size() < requested);
        }
        // millisBehindLatest is a time distance: 0 on a full page can still leave records that
        // arrived in the same millisecond, so only a short page at the tip counts as caught up
        caughtUp = !fetcher.exhausted() && atTip && records.size() < requested;
        page = deaggregate(records);
    }

    private void fetchReplay() {
        GetRecordsResponse response = fetcher.fetch(options.maxRecordsPerCall());
        List<Record> inRange = new ArrayList<>();
        for (Record record : response.records()) {
            int cmp = new BigInteger(record.sequenceNumber()).compareTo(replayTarget);
            if (cmp <= 0) {
                inRange.add(record);
            }
            if (cmp >= 0) {
                done = true;
                break;
            }
        }
        observe(response, inRange);
        if (!done) {
            if (fetcher.exhausted()) {
                throw new ReplayMismatchException("shard " + partition.shardId() + " ended before the recorded "
                        + "end " + replayTarget + " of batch " + partition.epoch());
            }
            emptyPolls = response.records().isEmpty() ? emptyPolls + 1 : 0;
            if (emptyPolls > MAX_REPLAY_EMPTY_POLLS) {
                throw new ReplayMismatchException("recorded end " + replayTarget + " of shard "
                        + partition.shardId() + " not found in batch " + partition.epoch());
            }
        }
        page = deaggregate(inRange);
    }

    private void observe(GetRecordsResponse response, List<Record> records) {
        kinesisRecords += records.size();
        if (!records.isEmpty()) {
            Record last = records.get(records.size() - 1);
            lastSequenceNumber = last.sequenceNumber();
            Instant arrival = last.approximateArrivalTimestamp();
            lastArrivalMillis = arrival == null ? lastArrivalMillis : arrival.toEpochMilli();
        }
        Long behind = response.millisBehindLatest();
        millisBehindLatest = behind == null ? -1 : behind;
        observedAtMillis = System.currentTimeMillis();
    }

    private Iterator<KinesisClientRecord> deaggregate(List<Record> records) {
        if (records.isEmpty()) {
            return Collections.emptyIterator();
        }
        List<KinesisClientRecord> raw = new ArrayList<>(records.size());
        for (Record record : records) {
            raw.add(KinesisClientRecord.fromRecord(record));
        }
        return deaggregator.deaggregate(raw).iterator();
    }

    /** Records the batch end once, when the partition is exhausted (fresh attempts only). */
    private void end() {
        if (ended) {
            return;
        }
        ended = true;
        if (recorded != null) {
            return;
        }
        BatchEnd mine = new BatchEnd(lastSequenceNumber, fetcher.exhausted(), caughtUp, kinesisRecords,
                millisBehindLatest, lastArrivalMillis, observedAtMillis);
        BatchEnd standing = partition.store().recordOnce(partition.epoch(), partition.shardId(), mine);
        if (!standing.sameRange(mine)) {
            throw new ReplayMismatchException("another attempt of batch " + partition.epoch() + " recorded "
                    + standing.toJson() + " for " + partition.shardId() + ", this one read " + mine.toJson());
        }
    }

    private InternalRow toRow(KinesisClientRecord record) {
        ByteBuffer data = record.data().duplicate();
        byte[] bytes = new byte[data.remaining()];
        data.get(bytes);
        Instant arrival = record.approximateArrivalTimestamp();
        Long micros = arrival == null ? null : arrival.getEpochSecond() * 1_000_000L + arrival.getNano() / 1_000;
        return new GenericInternalRow(new Object[] {
            bytes,
            streamName,
            UTF8String.fromString(record.partitionKey()),
            UTF8String.fromString(record.sequenceNumber()),
            shardId,
            micros,
        });
    }

    @Override
    public InternalRow get() {
        return current;
    }

    @Override
    public CustomTaskMetric[] currentMetricsValues() {
        return new CustomTaskMetric[] {
            KinesisMetrics.task(KinesisMetrics.MILLIS_BEHIND_LATEST, millisBehindLatest),
            KinesisMetrics.task(KinesisMetrics.RECORDS_READ, kinesisRecords),
        };
    }

    @Override
    public void close() {
        // the client is shared per JVM (KinesisClients); nothing of ours to release
    }
}
