package io.featurestream.asof;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.unsafe.hash.Murmur3_x86_32;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * The bytes of a row's key columns (ordinals 0..k-1), where equal bytes mean equal keys.
 *
 * <p>One string key, the common case, is read in place (its UTF-8 bytes inside the row, no copy);
 * any other key goes through an UnsafeProjection of the key columns, whose bytes are equal exactly
 * when the values are (the caller keeps floating-point keys, where SQL equality differs, out).
 * The view is reused: valid until the next {@link #read}.
 */
final class KeyBytes {
  private final int keyCount;
  private final boolean oneString;
  private final UnsafeProjection project;
  Object base;
  long offset;
  int size;

  KeyBytes(DataType[] keyTypes) {
    this.keyCount = keyTypes.length;
    this.oneString = keyTypes.length == 1 && keyTypes[0] instanceof StringType;
    this.project = oneString ? null : LabelIntervalReduce.keyProjection(keyTypes);
  }

  /** False when a key column is null: SQL equality never matches it. */
  boolean read(InternalRow row) {
    for (int i = 0; i < keyCount; i++) {
      if (row.isNullAt(i)) {
        return false;
      }
    }
    if (oneString && row instanceof UnsafeRow) {
      // The string's bytes in place: its (offset << 32 | size) word, as UnsafeRow.getUTF8String reads it.
      UnsafeRow unsafe = (UnsafeRow) row;
      long offsetAndSize = unsafe.getLong(0);
      base = unsafe.getBaseObject();
      offset = unsafe.getBaseOffset() + (offsetAndSize >>> 32);
      size = (int) offsetAndSize;
    } else if (oneString) {
      UTF8String key = row.getUTF8String(0);
      base = key.getBaseObject();
      offset = key.getBaseOffset();
      size = key.numBytes();
    } else {
      UnsafeRow key = project.apply(row);
      base = key.getBaseObject();
      offset = key.getBaseOffset();
      size = key.getSizeInBytes();
    }
    return true;
  }

  int hash() {
    return Murmur3_x86_32.hashUnsafeBytes(base, offset, size, 42);
  }
}
