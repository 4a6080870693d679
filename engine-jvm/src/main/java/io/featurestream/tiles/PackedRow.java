package io.featurestream.tiles;

import java.io.Serializable;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.Platform;
import scala.collection.JavaConverters;
import java.util.Collections;
import java.util.function.Function;
import org.apache.spark.sql.catalyst.expressions.codegen.Block;
import org.apache.spark.sql.catalyst.expressions.codegen.CodeBlock;
import org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator;
import org.apache.spark.sql.catalyst.expressions.codegen.JavaCode;

/**
 * A struct column as one opaque binary value and back: the bytes of the struct's {@link UnsafeRow}.
 *
 * <p>The engine carries each event whole ({@code _event}) for a late event or a record bound for
 * the DLQ, and every Row encoder it goes through (both sides of the map side and of the state
 * operator) spells out each nested field of a struct: a wide event made a large plan, which Spark
 * optimises, describes and generates code for in every micro-batch. As one binary value it is one
 * field. An UnsafeRow holds every Spark type in its own binary layout, so {@link #unpack} gives back
 * exactly the values {@link #pack} got (no text form in between); the struct type must be the one
 * packed (the layout is positional).
 */
public final class PackedRow {
  private PackedRow() {}

  /** {@code struct} (a struct column) as the bytes of its UnsafeRow; null for a null struct. */
  public static Column pack(Column struct) {
    return new Column(new Pack(struct.expr()));
  }

  /** Bytes made by {@link #pack} back to the struct of {@code typeJson} (a StructType's JSON). */
  public static Column unpack(Column bytes, String typeJson) {
    return new Column(new Unpack(bytes.expr(), (StructType) DataType.fromJson(typeJson)));
  }

  /** Packs rows of one struct type; made once per expression instance (per task, as plans are). */
  public static final class Packer implements Serializable {
    private static final long serialVersionUID = 1L;
    private final StructType type;
    private transient UnsafeProjection projection;

    Packer(StructType type) {
      this.type = type;
    }

    /** A new array every time (UnsafeRow.getBytes may hand out a buffer the projection reuses). */
    public byte[] pack(InternalRow row) {
      UnsafeRow unsafe;
      if (row instanceof UnsafeRow) {
        unsafe = (UnsafeRow) row;
      } else {
        if (projection == null) {
          projection = UnsafeProjection.create(type);
        }
        unsafe = projection.apply(row);
      }
      byte[] bytes = new byte[unsafe.getSizeInBytes()];
      unsafe.writeToMemory(bytes, Platform.BYTE_ARRAY_OFFSET);
      return bytes;
    }
  }

  /** The UnsafeRow of {@code fields} fields in {@code bytes} (the bytes are not copied). */
  public static UnsafeRow unpackBytes(byte[] bytes, int fields) {
    UnsafeRow row = new UnsafeRow(fields);
    row.pointTo(bytes, bytes.length);
    return row;
  }

  /** Code that evaluates {@code child} and, when not null, {@code call} of its value into ev. */
  private static ExprCode generate(CodegenContext ctx, ExprCode ev, Expression child, DataType type,
      Function<String, String> call) {
    ExprCode in = child.genCode(ctx);
    String text = "\nboolean " + ev.isNull() + " = " + in.isNull() + ";\n"
        + CodeGenerator.javaType(type) + " " + ev.value() + " = null;\n"
        + "if (!" + ev.isNull() + ") {\n  " + ev.value() + " = " + call.apply(in.value().toString()) + ";\n}\n";
    Block block = in.code().$plus(new CodeBlock(JavaConverters.asScalaBuffer(Collections.singletonList(text)).toSeq(),
        JavaConverters.asScalaBuffer(Collections.<JavaCode>emptyList()).toSeq()));
    return new ExprCode(block, ev.isNull(), ev.value());
  }

  /** One child evaluated to a value or null: what {@link Pack} and {@link Unpack} share. */
  abstract static class OneChild extends SingleChildExpression {
    private static final long serialVersionUID = 1L;

    OneChild(Expression child) {
      super(child);
    }

    @Override
    public Object eval(InternalRow input) {
      Object value = child.eval(input);
      return value == null ? null : nullSafeEval(value);
    }

    /** The value of a non-null child value. */
    abstract Object nullSafeEval(Object input);
  }

  /** The expression of {@link #pack}: a struct child, a binary value. */
  public static final class Pack extends OneChild {
    private static final long serialVersionUID = 1L;
    private transient Packer packer;

    public Pack(Expression child) {
      super(child);
    }

    @Override
    public DataType dataType() {
      return DataTypes.BinaryType;
    }

    @Override
    Object nullSafeEval(Object input) {
      if (packer == null) {
        packer = new Packer((StructType) child.dataType());
      }
      return packer.pack((InternalRow) input);
    }

    @Override
    public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
      String packer = ctx.addReferenceObj("packer", new Packer((StructType) child.dataType()),
          Packer.class.getName());
      return generate(ctx, ev, child, DataTypes.BinaryType, row -> packer + ".pack(" + row + ")");
    }

    @Override
    Expression withNewChildInternal(Expression newChild) {
      return new Pack(newChild);
    }

    @Override
    public String prettyName() {
      return "pack_row";
    }
  }

  /** The expression of {@link #unpack}: a binary child, a struct of the given type. */
  public static final class Unpack extends OneChild {
    private static final long serialVersionUID = 1L;
    private final StructType type;

    public Unpack(Expression child, StructType type) {
      super(child);
      this.type = type;
    }

    @Override
    public DataType dataType() {
      return type;
    }

    @Override
    Object nullSafeEval(Object input) {
      return unpackBytes((byte[]) input, type.size());
    }

    @Override
    public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
      int fields = type.size();
      return generate(ctx, ev, child, type,
          bytes -> PackedRow.class.getName() + ".unpackBytes(" + bytes + ", " + fields + ")");
    }

    @Override
    Expression withNewChildInternal(Expression newChild) {
      return new Unpack(newChild, type);
    }

    @Override
    public String prettyName() {
      return "unpack_row";
    }

    @Override
    Object[] parameters() {
      return new Object[] {type};
    }
  }
}
