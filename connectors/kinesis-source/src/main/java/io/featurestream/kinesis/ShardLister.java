package io.featurestream.kinesis;

import java.util.ArrayList;
import java.util.List;

import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.ListShardsRequest;
import software.amazon.awssdk.services.kinesis.model.ListShardsResponse;
import software.amazon.awssdk.services.kinesis.model.Shard;

/** Every shard the stream still has (open and closed-but-retained), across ListShards pages. */
final class ShardLister {
    private ShardLister() {
    }

    static List<Shard> list(KinesisClient client, KinesisOptions options) {
        List<Shard> shards = new ArrayList<>();
        String token = null;
        do {
            ListShardsRequest.Builder request = ListShardsRequest.builder();
            if (token != null) {
                // the API rejects a stream name next to a NextToken
                request.nextToken(token);
            } else if (options.streamArn() != null) {
                request.streamARN(options.streamArn());
            } else {
                request.streamName(options.streamName());
            }
            ListShardsRequest built = request.build();
            ListShardsResponse response = Backoff.retryThrottled("ListShards " + options.streamName(),
                    options.maxThrottleWaitMs(), () -> client.listShards(built));
            shards.addAll(response.shards());
            token = response.nextToken();
        } while (token != null);
        return shards;
    }
}
