// Shared by the samples that train on the corpus (linked with <Compile Include="../Shared/TokenCache.cs" />).
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Tokenization;

internal static class Tokens
{
    /// <summary>
    /// The token ids of <paramref name="lines"/> (each line BOS-first as the tokenizer encodes it, then
    /// <paramref name="eosId"/>), read from the cache file <paramref name="path"/> when it exists, else encoded on two
    /// threads and written there atomically.
    /// </summary>
    public static int[] LoadOrEncode(string path, List<string> lines, HfTokenizer tokenizer, int eosId, ILogger log)
    {
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            var cached = new int[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, cached, 0, bytes.Length);
            return cached;
        }
        var all = Encode(lines, tokenizer, eosId, log);
        var buffer = new byte[all.Length * 4];
        Buffer.BlockCopy(all, 0, buffer, 0, buffer.Length);
        File.WriteAllBytes(path + ".tmp", buffer);
        File.Move(path + ".tmp", path, overwrite: true);
        return all;
    }

    /// <summary>The token ids of <paramref name="lines"/> (each BOS-first, then <paramref name="eosId"/>), encoded on two threads; nothing is cached.</summary>
    public static int[] Encode(List<string> lines, HfTokenizer tokenizer, int eosId, ILogger log)
    {
        var sw = Stopwatch.StartNew();
        var parts = new int[lines.Count][];
        Parallel.For(0, lines.Count, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
        {
            var ids = tokenizer.Encode(lines[i]); // BOS first (the tokenizer adds it by default)
            parts[i] = [.. ids, eosId];
        });
        var all = parts.SelectMany(p => p).ToArray();
        log.LogInformation("Encoded {Lines} lines into {Tokens} tokens in {S:F0} s.", lines.Count, all.Length, sw.Elapsed.TotalSeconds);
        return all;
    }
}
