package io.featurestream.kinesis;

import java.util.Map;

import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** Entry point: {@code spark.readStream.format("kinesis")}, registered through META-INF/services. */
public final class KinesisSourceProvider implements TableProvider, DataSourceRegister {
    @Override
    public String shortName() {
        return "kinesis";
    }

    @Override
    public StructType inferSchema(CaseInsensitiveStringMap options) {
        return KinesisSchema.SCHEMA;
    }

    @Override
    public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
        // validate options on the driver, before any batch is planned
        return new KinesisTable(KinesisOptions.parse(properties));
    }
}
