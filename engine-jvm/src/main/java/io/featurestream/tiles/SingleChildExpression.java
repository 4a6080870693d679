package io.featurestream.tiles;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Collections;
import java.util.Objects;
import org.apache.spark.sql.catalyst.expressions.Expression;
import scala.collection.IndexedSeq;
import scala.collection.JavaConverters;
import scala.collection.Seq;

/**
 * A Catalyst expression of one child, written in Java: the tree and Scala {@code Product} members
 * that Catalyst's own {@code UnaryExpression} gets from Scala (a Java class cannot mix its traits
 * in). Two such expressions are equal when they are of the same class over equal children and
 * equal {@link #parameters}, which is what Catalyst compares plans and subexpressions by.
 */
abstract class SingleChildExpression extends Expression implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Object[] NONE = new Object[0];
  protected final Expression child;

  SingleChildExpression(Expression child) {
    this.child = child;
  }

  public Expression child() {
    return child;
  }

  /** The fields besides the child that tell two expressions of this class apart (none by default). */
  Object[] parameters() {
    return NONE;
  }

  /** This expression over another child. */
  abstract Expression withNewChildInternal(Expression newChild);

  @Override
  public Seq<Expression> children() {
    return JavaConverters.asScalaBuffer(Collections.singletonList(child)).toSeq();
  }

  @Override
  public boolean nullable() {
    return child.nullable();
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> newChildren) {
    return withNewChildInternal(newChildren.head());
  }

  @Override
  public int productArity() {
    return 1 + parameters().length;
  }

  @Override
  public Object productElement(int n) {
    Object[] parameters = parameters();
    if (n == 0) {
      return child;
    }
    if (n > 0 && n <= parameters.length) {
      return parameters[n - 1];
    }
    throw new IndexOutOfBoundsException(Integer.toString(n));
  }

  @Override
  public boolean canEqual(Object that) {
    return that != null && that.getClass() == getClass();
  }

  @Override
  public boolean equals(Object that) {
    if (!canEqual(that)) {
      return false;
    }
    SingleChildExpression other = (SingleChildExpression) that;
    return child.equals(other.child) && Arrays.equals(parameters(), other.parameters());
  }

  @Override
  public int hashCode() {
    return Objects.hash(getClass(), child, Arrays.hashCode(parameters()));
  }
}
