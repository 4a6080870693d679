package io.featurestream.tiles;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExprUtils$;
import org.apache.spark.sql.catalyst.expressions.JsonToStructs;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.catalyst.json.CreateJacksonParser;
import org.apache.spark.sql.catalyst.json.JSONOptions;
import org.apache.spark.sql.catalyst.json.JacksonParser;
import org.apache.spark.sql.catalyst.util.FailureSafeParser;
import org.apache.spark.sql.catalyst.util.PermissiveMode$;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import scala.collection.Iterable;
import scala.collection.Iterator;
import scala.runtime.AbstractFunction1;
import scala.runtime.AbstractFunction2;

/**
 * Spark's {@code from_json} (a {@link JsonToStructs}) to a struct in PERMISSIVE mode, with the
 * same parser, options and results, minus a per-record cost of Spark 3.5's: it hands Jackson each
 * record through an {@code InputStreamReader}, whose decoder allocates an 8 KB byte buffer (and a
 * charset decoder) for every record. Here the record is decoded to a String (the same UTF-8
 * decoding, with the same replacement of malformed bytes) and Jackson reads that: the same
 * character-based parser class over the same characters, so every record parses to the same row,
 * or is corrupt, exactly as with {@code from_json}. The wrapped {@code JsonToStructs} stays in the
 * plan as this expression's child (the analyzer resolves its time zone there) and is never
 * evaluated itself; another schema kind or mode than a struct in PERMISSIVE mode evaluates it as is.
 */
public final class FromJson extends SingleChildExpression implements CodegenFallback {
  private static final long serialVersionUID = 1L;
  private final JsonToStructs inner;
  private transient FailureSafeParser<UTF8String> parser;
  private transient boolean asIs;

  public FromJson(JsonToStructs inner) {
    super(inner);
    this.inner = inner;
  }

  /** {@code parsed} (a {@code from_json} column) parsed as described above. */
  public static Column wrap(Column parsed) {
    Expression expr = parsed.expr();
    if (!(expr instanceof JsonToStructs)) {
      throw new IllegalArgumentException("not a from_json column: " + expr);
    }
    return new Column(new FromJson((JsonToStructs) expr));
  }

  @Override
  public Object eval(InternalRow input) {
    if (parser == null && !asIs) {
      build();
    }
    if (asIs) {
      return inner.eval(input);
    }
    Object json = inner.child().eval(input);
    if (json == null) {
      return null;
    }
    // JsonToStructs' converter for a struct: the parser's one row, or null.
    Iterator<InternalRow> rows = parser.parse((UTF8String) json);
    return rows.hasNext() ? rows.next() : null;
  }

  /** The parser JsonToStructs builds (options, schema without the corrupt-record column, mode), fed Strings. */
  private void build() {
    JSONOptions options = new JSONOptions(inner.options(), inner.timeZoneId().get(), inner.nameOfCorruptRecord());
    DataType schema = inner.nullableSchema();
    if (!(schema instanceof StructType) || !PermissiveMode$.MODULE$.equals(options.parseMode())) {
      asIs = true;
      return;
    }
    StructType struct = (StructType) schema;
    String corrupt = options.columnNameOfCorruptRecord();
    ExprUtils$.MODULE$.verifyColumnNameOfCorruptRecord(struct, corrupt);
    java.util.List<StructField> kept = new java.util.ArrayList<>();
    for (StructField field : struct.fields()) {
      if (!field.name().equals(corrupt)) {
        kept.add(field);
      }
    }
    StructType actual = new StructType(kept.toArray(new StructField[0]));
    JacksonParser raw = new JsonEventParser(actual, options);
    AbstractFunction2<com.fasterxml.jackson.core.JsonFactory, UTF8String, com.fasterxml.jackson.core.JsonParser>
        create = new AbstractFunction2<>() {
          @Override
          public com.fasterxml.jackson.core.JsonParser apply(com.fasterxml.jackson.core.JsonFactory factory,
              UTF8String record) {
            return CreateJacksonParser.string(factory, record.toString());
          }
        };
    AbstractFunction1<UTF8String, UTF8String> literal = new AbstractFunction1<>() {
      @Override
      public UTF8String apply(UTF8String record) {
        return record;
      }
    };
    parser = new FailureSafeParser<>(new AbstractFunction1<UTF8String, Iterable<InternalRow>>() {
      @Override
      public Iterable<InternalRow> apply(UTF8String record) {
        return raw.parse(record, create, literal);
      }
    }, options.parseMode(), struct, corrupt);
  }

  @Override
  public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
    return CodegenFallback.super.doGenCode(ctx, ev);
  }

  @Override
  public DataType dataType() {
    return inner.dataType();
  }

  @Override
  Expression withNewChildInternal(Expression child) {
    // Should a rule ever turn the from_json into something else, that gives the same value.
    return child instanceof JsonToStructs ? new FromJson((JsonToStructs) child) : child;
  }

  @Override
  public String prettyName() {
    return "from_json_text";
  }
}
