using System.Globalization;
using Pip.Checkpoints;
using static TorchSharp.torch;

namespace Pip.Torch.Checkpoints;

/// <summary>A weight tensor that holds NaN or ±Inf values.</summary>
/// <param name="File">The weight file it was read from.</param>
/// <param name="Tensor">The tensor name.</param>
/// <param name="Count">How many of its values are not finite.</param>
/// <param name="ElementCount">How many values it has.</param>
public sealed record NonFiniteTensor(string File, string Tensor, long Count, long ElementCount)
{
    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"'{Tensor}' in '{File}': {Count:N0} of {ElementCount:N0} values are NaN or ±Inf");
}

/// <summary>Finds non-finite values (NaN, ±Inf) in weight tensors, in one vectorised pass with bounded extra memory.</summary>
public static class NonFiniteWeights
{
    /// <summary>Elements examined at once: the temporary mask is at most this many bytes.</summary>
    private const long ChunkElements = 1L << 24;

    /// <summary>How many values of a tensor are NaN or ±Inf (0 for integer and boolean tensors).</summary>
    /// <param name="tensor">The tensor (any device, any shape).</param>
    /// <returns>The count.</returns>
    public static long Count(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!tensor.is_floating_point() || tensor.numel() == 0)
            return 0;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var flat = tensor.detach().reshape(-1);
        var total = flat.numel();
        long count = 0;
        for (long start = 0; start < total; start += ChunkElements)
        {
            var part = flat.narrow(0, start, Math.Min(ChunkElements, total - start));
            // All finite is the common case: one reduction over the mask, and the count only when it fails.
            var finite = part.isfinite();
            if (finite.all().item<bool>())
                continue;
            count += finite.logical_not().sum().item<long>();
        }
        return count;
    }

    /// <summary>The floating-point tensors of a loaded checkpoint that hold non-finite values, in name order.</summary>
    /// <param name="checkpoint">The checkpoint they were read from (for the file names).</param>
    /// <param name="weights">Name → tensor, as <see cref="TorchSafeTensors.Load"/> returns them.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The tensors with non-finite values; empty when all are finite.</returns>
    public static IReadOnlyList<NonFiniteTensor> Find(CheckpointFolder checkpoint, IReadOnlyDictionary<string, Tensor> weights, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(weights);
        var found = new List<NonFiniteTensor>();
        foreach (var (name, tensor) in weights.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Count(tensor);
            if (count > 0)
                found.Add(new NonFiniteTensor(checkpoint.Contains(name) ? checkpoint.GetFile(name).FilePath : checkpoint.FolderPath, name, count, tensor.numel()));
        }
        return found;
    }

    /// <summary>The error for a checkpoint with non-finite weights: it names the (first) file, every tensor and its count.</summary>
    /// <param name="found">The tensors (at least one).</param>
    /// <returns>The exception to throw.</returns>
    public static CheckpointFormatException Error(IReadOnlyList<NonFiniteTensor> found)
    {
        ArgumentNullException.ThrowIfNull(found);
        if (found.Count == 0) throw new ArgumentException("No tensor was given.", nameof(found));
        const int Shown = 10;
        var list = string.Join("; ", found.Take(Shown).Select(f => string.Create(CultureInfo.InvariantCulture, $"'{f.Tensor}'{(f.File == found[0].File ? "" : $" (in '{f.File}')")}: {f.Count:N0} of {f.ElementCount:N0}")));
        if (found.Count > Shown) list += string.Create(CultureInfo.InvariantCulture, $"; … and {found.Count - Shown} more");
        var problem = string.Create(CultureInfo.InvariantCulture,
            $"{found.Count} weight tensor{(found.Count == 1 ? "" : "s")} hold{(found.Count == 1 ? "s" : "")} NaN or ±Inf values ({list}); every score computed from this model would be NaN. To load it anyway, set TorchLoadOptions.AllowNonFiniteWeights (pip-prune: --allow-non-finite).");
        return new CheckpointFormatException(found[0].File, problem, found[0].Tensor);
    }
}
