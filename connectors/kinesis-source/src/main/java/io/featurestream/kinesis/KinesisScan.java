package io.featurestream.kinesis;

import org.apache.spark.sql.connector.metric.CustomMetric;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.streaming.MicroBatchStream;
import org.apache.spark.sql.types.StructType;

/** Scan (and its builder: nothing to push down) for one Kinesis stream. */
final class KinesisScan implements Scan, ScanBuilder {
    private final KinesisOptions options;

    KinesisScan(KinesisOptions options) {
        this.options = options;
    }

    @Override
    public Scan build() {
        return this;
    }

    @Override
    public StructType readSchema() {
        return KinesisSchema.SCHEMA;
    }

    @Override
    public String description() {
        return "kinesis[" + options.streamName() + "]";
    }

    @Override
    public MicroBatchStream toMicroBatchStream(String checkpointLocation) {
        return new KinesisMicroBatchStream(options, checkpointLocation);
    }

    @Override
    public CustomMetric[] supportedCustomMetrics() {
        return KinesisMetrics.supported();
    }
}
