using static TorchSharp.torch;

namespace Pip.Torch.Training;

/// <summary>
/// A token stream cut into fixed-length training sequences: sequence <c>i</c> holds tokens
/// <c>i·L … i·L + L</c> (L + 1 tokens: L inputs and, shifted by one, L targets), so every token after the first is
/// a target exactly once. A tail shorter than L + 1 tokens is dropped.
/// </summary>
public sealed class PackedSequences
{
    private readonly int[] _tokens;

    /// <summary>Packs a token stream.</summary>
    /// <param name="tokens">The token ids (copied).</param>
    /// <param name="sequenceLength">L, the number of input positions per sequence (at least 1).</param>
    /// <exception cref="ArgumentException">The stream is too short for one sequence.</exception>
    public PackedSequences(IReadOnlyList<int> tokens, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        if (tokens.Count < sequenceLength + 1)
            throw new ArgumentException($"{tokens.Count} tokens are too few for one sequence of {sequenceLength} inputs (need {sequenceLength + 1}).", nameof(tokens));
        _tokens = tokens.ToArray();
        SequenceLength = sequenceLength;
        Count = (_tokens.Length - 1) / sequenceLength;
    }

    /// <summary>Input positions per sequence.</summary>
    public int SequenceLength { get; }

    /// <summary>The number of sequences.</summary>
    public int Count { get; }

    /// <summary>The tokens scored as targets: <see cref="Count"/> × <see cref="SequenceLength"/>.</summary>
    public long TargetTokenCount => (long)Count * SequenceLength;

    /// <summary>The L + 1 tokens of sequence <paramref name="index"/>.</summary>
    /// <param name="index">The sequence index.</param>
    /// <returns>A view of the tokens.</returns>
    public ReadOnlySpan<int> this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return _tokens.AsSpan(index * SequenceLength, SequenceLength + 1);
        }
    }

    /// <summary>Builds a batch of the given sequences.</summary>
    /// <param name="indices">Sequence indices.</param>
    /// <param name="device">The device of the tensors.</param>
    /// <returns>The batch; dispose it.</returns>
    public TrainingBatch CreateBatch(IReadOnlyList<int> indices, Device device)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0) throw new ArgumentException("A batch needs at least one sequence.", nameof(indices));
        int l = SequenceLength;
        var inputs = new long[indices.Count * l];
        var targets = new long[indices.Count * l];
        for (int b = 0; b < indices.Count; b++)
        {
            var s = this[indices[b]];
            for (int t = 0; t < l; t++)
            {
                inputs[b * l + t] = s[t];
                targets[b * l + t] = s[t + 1];
            }
        }

        var inputTensor = tensor(inputs, [indices.Count, l], device: device);
        var targetTensor = tensor(targets, [indices.Count, l], device: device);
        return new TrainingBatch(inputTensor, targetTensor, indices.ToArray());
    }
}

/// <summary>A batch of packed sequences: inputs and next-token targets, both int64 [batch, L].</summary>
public sealed class TrainingBatch : IDisposable
{
    /// <summary>Wraps tensors (the batch owns them).</summary>
    /// <param name="inputIds">Input ids [batch, L].</param>
    /// <param name="targets">Target ids [batch, L].</param>
    /// <param name="sequenceIndices">The sequences in the batch.</param>
    public TrainingBatch(Tensor inputIds, Tensor targets, IReadOnlyList<int> sequenceIndices)
    {
        InputIds = inputIds;
        Targets = targets;
        SequenceIndices = sequenceIndices;
    }

    /// <summary>Input token ids [batch, L] (int64).</summary>
    public Tensor InputIds { get; }

    /// <summary>Next-token targets [batch, L] (int64).</summary>
    public Tensor Targets { get; }

    /// <summary>The indices of the batch's sequences in their <see cref="PackedSequences"/>.</summary>
    public IReadOnlyList<int> SequenceIndices { get; }

    /// <summary>The number of target tokens.</summary>
    public long TokenCount => Targets.numel();

    /// <inheritdoc/>
    public void Dispose()
    {
        InputIds.Dispose();
        Targets.Dispose();
    }
}
