using static TorchSharp.torch;

namespace Pip.Torch.Pruning;

/// <summary>A batch of token sequences of different lengths, right-padded, with the causal-LM loss of each.</summary>
/// <remarks>
/// Right padding is exact for causal models: a real position never attends to the pads after it. Pads are excluded
/// from the loss. Each sequence's loss is the mean next-token negative log-likelihood over its own tokens, as the
/// Hugging Face loss with labels = inputs.
/// </remarks>
internal sealed class PaddedBatch : IDisposable
{
    private PaddedBatch(Tensor ids, Tensor targets, Tensor mask, int[] lengths)
    {
        Ids = ids;
        Targets = targets;
        Mask = mask;
        Lengths = lengths;
    }

    /// <summary>Token ids [batch, maxLength] (int64).</summary>
    public Tensor Ids { get; }

    /// <summary>Next-token targets [batch, maxLength − 1] (int64; pads are 0).</summary>
    public Tensor Targets { get; }

    /// <summary>1 where a target is a real token, 0 for pads [batch, maxLength − 1] (float32).</summary>
    public Tensor Mask { get; }

    /// <summary>The sequences' lengths.</summary>
    public IReadOnlyList<int> Lengths { get; }

    /// <summary>Pads the sequences into one batch on <paramref name="device"/>.</summary>
    /// <param name="sequences">At least one sequence, each at least two tokens long.</param>
    /// <param name="device">The model's device.</param>
    public static PaddedBatch Create(IReadOnlyList<IReadOnlyList<int>> sequences, Device device)
    {
        if (sequences.Count == 0) throw new ArgumentException("At least one sequence is needed.", nameof(sequences));
        int max = sequences.Max(s => s.Count);
        if (sequences.Any(s => s.Count < 2)) throw new ArgumentException("Every sequence needs at least two tokens to have a next-token loss.", nameof(sequences));
        var ids = new long[sequences.Count * max];
        var mask = new float[sequences.Count * (max - 1)];
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            for (int t = 0; t < s.Count; t++) ids[b * max + t] = s[t];
            for (int t = 0; t < s.Count - 1; t++) mask[b * (max - 1) + t] = 1f;
        }

        var idTensor = tensor(ids, [sequences.Count, max], device: device);
        var targets = idTensor[.., 1..].contiguous();
        var maskTensor = tensor(mask, [sequences.Count, max - 1], device: device);
        return new PaddedBatch(idTensor, targets, maskTensor, sequences.Select(s => s.Count).ToArray());
    }

    /// <summary>Per-sequence mean NLL [batch] (float32) from logits [batch, maxLength, vocab].</summary>
    /// <param name="logits">The model's logits for <see cref="Ids"/>.</param>
    public Tensor SequenceLosses(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var logProbs = logits[.., ..^1, ..].to_type(ScalarType.Float32).log_softmax(-1);
        var nll = -logProbs.gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
        var losses = (nll * Mask).sum(1) / Mask.sum(1);
        return losses.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Ids.Dispose();
        Targets.Dispose();
        Mask.Dispose();
    }
}
