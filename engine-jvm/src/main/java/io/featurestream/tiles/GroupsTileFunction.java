package io.featurestream.tiles;

import java.util.Iterator;
import org.apache.spark.api.java.function.FlatMapGroupsWithStateFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.GroupState;

/**
 * The state function of several feature groups on one source: one state operator for all of
 * them, each (group, entity) a key of its own, so the groups' state, timers and rules stay
 * apart while the micro-batch has one shuffle and one state stage instead of one per group.
 *
 * <p>A key is the group's index as its first character, then the entity key ({@link #key}).
 * An input row holds its group's row (the layout {@link TileFunction} reads) in field 1 + group,
 * the other groups' fields null; an output row holds the group's index, then the group's output
 * ({@link Output#schema}) in field 1 + group.
 */
final class GroupsTileFunction implements FlatMapGroupsWithStateFunction<String, Row, byte[], Row> {
  private static final long serialVersionUID = 1L;

  private final TileFunction[] groups;

  GroupsTileFunction(EngineConfig[] cfgs) {
    this.groups = new TileFunction[cfgs.length];
    for (int g = 0; g < cfgs.length; g++) {
      groups[g] = new TileFunction(cfgs[g]);
    }
  }

  /** The state key of group {@code group}'s entity {@code entity}. */
  static String key(int group, String entity) {
    return (char) group + entity;
  }

  @Override
  public Iterator<Row> call(String key, Iterator<Row> rows, GroupState<byte[]> state) {
    int group = key.charAt(0);
    int field = 1 + group;
    Iterator<Row> own = new Iterator<>() {
      @Override
      public boolean hasNext() {
        return rows.hasNext();
      }

      @Override
      public Row next() {
        return rows.next().getStruct(field);
      }
    };
    Iterator<Row> out = groups[group].call(key.substring(1), own, state);
    int width = 1 + groups.length;
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return out.hasNext();
      }

      @Override
      public Row next() {
        Object[] values = new Object[width];
        values[0] = group;
        values[field] = out.next();
        return RowFactory.create(values);
      }
    };
  }
}
