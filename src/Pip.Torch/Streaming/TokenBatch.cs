using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>
/// Right-padded token sequences with next-token targets and a mask of the targets that count (real tokens, and for
/// evaluation windows only those from a given position on).
/// </summary>
internal sealed class TokenBatch : IDisposable
{
    private TokenBatch(Tensor ids, Tensor targets, Tensor targetMask, Tensor tokenMask, int[] lengths, double[] counts)
    {
        Ids = ids;
        Targets = targets;
        TargetMask = targetMask;
        TokenMask = tokenMask;
        Lengths = lengths;
        TargetCounts = counts;
    }

    public Tensor Ids { get; }

    /// <summary>[batch, maxLength − 1] int64 (pads 0).</summary>
    public Tensor Targets { get; }

    /// <summary>[batch, maxLength − 1] float32.</summary>
    public Tensor TargetMask { get; }

    /// <summary>[batch, maxLength] float32: 1 at real tokens.</summary>
    public Tensor TokenMask { get; }

    public IReadOnlyList<int> Lengths { get; }

    public IReadOnlyList<double> TargetCounts { get; }

    public long Length => Ids.shape[1];

    /// <param name="sequences">Sequences of at least one token (two for a loss).</param>
    /// <param name="device">The device.</param>
    /// <param name="scoredFrom">Per sequence, the first target token index that is scored (default 1).</param>
    /// <param name="requireTargets">Whether every sequence needs two tokens (a loss).</param>
    public static TokenBatch Create(IReadOnlyList<IReadOnlyList<int>> sequences, Device device, IReadOnlyList<int>? scoredFrom = null, bool requireTargets = true)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("At least one sequence is needed.", nameof(sequences));
        if (requireTargets && sequences.Any(s => s.Count < 2)) throw new ArgumentException("Every sequence needs at least two tokens to have a next-token loss.", nameof(sequences));
        if (sequences.Any(s => s.Count < 1)) throw new ArgumentException("Every sequence needs at least one token.", nameof(sequences));
        int max = Math.Max(2, sequences.Max(s => s.Count));
        var ids = new long[sequences.Count * max];
        var mask = new float[sequences.Count * (max - 1)];
        var tokens = new float[sequences.Count * max];
        var counts = new double[sequences.Count];
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            for (int t = 0; t < s.Count; t++)
            {
                ids[b * max + t] = s[t];
                tokens[b * max + t] = 1f;
            }

            int first = Math.Max(1, scoredFrom?[b] ?? 1);
            for (int t = first - 1; t < s.Count - 1; t++)
            {
                mask[b * (max - 1) + t] = 1f;
                counts[b]++;
            }
        }

        var idTensor = tensor(ids, [sequences.Count, max], device: device);
        return new TokenBatch(
            idTensor,
            idTensor[.., 1..].contiguous(),
            tensor(mask, [sequences.Count, max - 1], device: device),
            tensor(tokens, [sequences.Count, max], device: device),
            sequences.Select(s => s.Count).ToArray(),
            counts);
    }

    public void Dispose()
    {
        Ids.Dispose();
        Targets.Dispose();
        TargetMask.Dispose();
        TokenMask.Dispose();
    }
}
