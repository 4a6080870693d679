package io.featurestream.kinesis;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.broadcast.Broadcast;

/**
 * Per-shard batch ends under the query's checkpoint: {@code <source checkpoint>/batch-ends/<epoch>/<shardId>}.
 * Written by executors (first writer wins), read by the driver to plan the next batch and by any
 * later attempt of the same batch to read exactly the same range.
 */
final class BatchEndStore implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String root;
    private final Broadcast<SerializableHadoopConf> conf;

    BatchEndStore(String sourceCheckpoint, Broadcast<SerializableHadoopConf> conf) {
        this.root = sourceCheckpoint + "/batch-ends";
        this.conf = conf;
    }

    private FileSystem fs(Path path) throws IOException {
        return path.getFileSystem(conf.value().get());
    }

    private Path file(long epoch, String shardId) {
        return new Path(new Path(root, Long.toString(epoch)), shardId);
    }

    /** The recorded end, or null if no attempt of that batch finished reading the shard. */
    BatchEnd read(long epoch, String shardId) {
        Path path = file(epoch, shardId);
        try {
            FileSystem fs = fs(path);
            try (InputStream in = fs.open(path)) {
                return BatchEnd.fromJson(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
        } catch (FileNotFoundException e) {
            return null;
        } catch (IOException e) {
            throw new KinesisSourceException("cannot read " + path, e);
        }
    }

    /**
     * Records {@code end} unless an end is already there, and returns the one that stands. The
     * temp-file-then-rename keeps readers from ever seeing half a file; the exists check before
     * the rename keeps the first writer's record (atomic on HDFS, where rename never overwrites).
     */
    BatchEnd recordOnce(long epoch, String shardId, BatchEnd end) {
        Path path = file(epoch, shardId);
        Path tmp = new Path(path.getParent(), "." + shardId + "." + UUID.randomUUID() + ".tmp");
        try {
            FileSystem fs = fs(path);
            fs.mkdirs(path.getParent());
            if (!fs.exists(path)) {
                try (OutputStream out = fs.create(tmp, false)) {
                    out.write(end.toJson().getBytes(StandardCharsets.UTF_8));
                }
                if (!fs.exists(path)) {
                    fs.rename(tmp, path);
                }
                fs.delete(tmp, false);
            }
        } catch (IOException e) {
            throw new KinesisSourceException("cannot record batch end at " + path, e);
        }
        BatchEnd standing = read(epoch, shardId);
        if (standing == null) {
            throw new KinesisSourceException("batch end vanished after writing " + path);
        }
        return standing;
    }

    /** Drops records of batches before {@code epoch}; Spark never replays a committed batch. */
    void purgeBefore(long epoch) {
        Path rootPath = new Path(root);
        try {
            FileSystem fs = fs(rootPath);
            if (!fs.exists(rootPath)) {
                return;
            }
            for (FileStatus status : fs.listStatus(rootPath)) {
                try {
                    if (Long.parseLong(status.getPath().getName()) < epoch) {
                        fs.delete(status.getPath(), true);
                    }
                } catch (NumberFormatException ignored) {
                    // not one of ours; leave it
                }
            }
        } catch (IOException e) {
            throw new KinesisSourceException("cannot purge " + rootPath, e);
        }
    }
}
