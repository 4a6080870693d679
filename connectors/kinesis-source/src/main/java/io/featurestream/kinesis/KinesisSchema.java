package io.featurestream.kinesis;

import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** Output columns, named and typed as the AWS Labs connector's, plus the shard the record came from. */
final class KinesisSchema {
    static final StructType SCHEMA = new StructType()
            .add("data", DataTypes.BinaryType, false)
            .add("streamName", DataTypes.StringType, false)
            .add("partitionKey", DataTypes.StringType, false)
            .add("sequenceNumber", DataTypes.StringType, false)
            .add("shardId", DataTypes.StringType, false)
            .add("approximateArrivalTimestamp", DataTypes.TimestampType, true);

    private KinesisSchema() {
    }
}
