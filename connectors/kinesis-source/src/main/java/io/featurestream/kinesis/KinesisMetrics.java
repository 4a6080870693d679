package io.featurestream.kinesis;

import org.apache.spark.sql.connector.metric.CustomMetric;
import org.apache.spark.sql.connector.metric.CustomTaskMetric;

/** Task metrics shown on the SQL tab; Spark instantiates the metric classes by name. */
final class KinesisMetrics {
    static final String MILLIS_BEHIND_LATEST = "millisBehindLatest";
    static final String RECORDS_READ = "kinesisRecordsRead";

    private KinesisMetrics() {
    }

    static CustomMetric[] supported() {
        return new CustomMetric[] {new MaxMillisBehindLatest(), new RecordsRead()};
    }

    static CustomTaskMetric task(String name, long value) {
        return new CustomTaskMetric() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public long value() {
                return value;
            }
        };
    }

    /** Largest millisBehindLatest any shard reported in the batch. */
    public static final class MaxMillisBehindLatest implements CustomMetric {
        @Override
        public String name() {
            return MILLIS_BEHIND_LATEST;
        }

        @Override
        public String description() {
            return "max millisBehindLatest over shards";
        }

        @Override
        public String aggregateTaskMetrics(long[] taskMetrics) {
            long max = -1;
            for (long value : taskMetrics) {
                max = Math.max(max, value);
            }
            return Long.toString(max);
        }
    }

    /** Kinesis records fetched (an aggregated KPL record counts once). */
    public static final class RecordsRead implements CustomMetric {
        @Override
        public String name() {
            return RECORDS_READ;
        }

        @Override
        public String description() {
            return "Kinesis records read";
        }

        @Override
        public String aggregateTaskMetrics(long[] taskMetrics) {
            long sum = 0;
            for (long value : taskMetrics) {
                sum += value;
            }
            return Long.toString(sum);
        }
    }
}
