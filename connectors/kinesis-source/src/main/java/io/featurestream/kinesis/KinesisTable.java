package io.featurestream.kinesis;

import java.util.EnumSet;
import java.util.Set;

import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** A Kinesis stream as a micro-batch readable table. */
final class KinesisTable implements SupportsRead {
    private final KinesisOptions options;

    KinesisTable(KinesisOptions options) {
        this.options = options;
    }

    @Override
    public String name() {
        return "kinesis:" + options.streamName();
    }

    @Override
    @SuppressWarnings("deprecation")
    public StructType schema() {
        return KinesisSchema.SCHEMA;
    }

    @Override
    public Set<TableCapability> capabilities() {
        return EnumSet.of(TableCapability.MICRO_BATCH_READ);
    }

    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap readOptions) {
        return new KinesisScan(KinesisOptions.parse(readOptions.asCaseSensitiveMap()));
    }
}
