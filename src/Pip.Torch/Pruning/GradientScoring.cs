using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning;

/// <summary>Per-layer norms of loss gradients (or gradient differences), reduced inside the layer-wise backward pass.</summary>
internal static class GradientScoring
{
    /// <summary>
    /// For each group of sequences, the norm of the gradient of <c>Σ sign_j · loss_j</c> with respect to each layer's
    /// parameters, divided by the layer's parameter count; returns the mean over groups, one value per layer.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="groups">Each group is scored with one backward pass; a pair (x, x′) with signs (+1, −1) gives ∇L(x) − ∇L(x′).</param>
    /// <param name="signs">Sign of each sequence's loss within a group.</param>
    /// <param name="norm">The norm.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <param name="afterGroup">Called after each group (progress).</param>
    /// <param name="recompute">Recompute layers in the backward pass instead of keeping their graphs (see <see cref="LayerwiseBackward.Run"/>).</param>
    public static double[] MeanNormPerParameter(
        ICausalLMModule model,
        IReadOnlyList<IReadOnlyList<IReadOnlyList<int>>> groups,
        IReadOnlyList<IReadOnlyList<double>> signs,
        INormAggregator norm,
        CancellationToken cancellationToken,
        Action? afterGroup = null,
        bool recompute = false)
    {
        if (groups.Count == 0) throw new ArgumentException("At least one calibration sample is needed.", nameof(groups));
        if (signs.Count != groups.Count) throw new ArgumentException("Each group needs its signs.", nameof(signs));
        int layers = model.Layers.Count;
        var counts = model.Layers.Select(l => (double)l.parameters().Sum(p => p.numel())).ToArray();
        var sums = new double[layers];
        for (int g = 0; g < groups.Count; g++)
        {
            using var batch = PaddedBatch.Create(groups[g], model.Device);
            var weights = signs[g].Select(s => (float)s).ToArray();
            LayerwiseBackward.Run(
                model,
                batch.Ids,
                logits =>
                {
                    var losses = batch.SequenceLosses(logits);
                    using var w = tensor(weights, device: losses.device);
                    return (losses * w).sum();
                },
                (layer, _, gradients) =>
                {
                    var parts = new double[gradients.Count];
                    for (int i = 0; i < parts.Length; i++) parts[i] = LayerwiseBackward.Norm(gradients[i], norm.Order);
                    sums[layer] += norm.Combine(parts) / counts[layer];
                },
                cancellationToken,
                recompute);
            afterGroup?.Invoke();
        }

        return sums.Select(s => s / groups.Count).ToArray();
    }

    /// <summary>Taylor importance Σ|w · ∂L/∂w| of each layer, L the mean loss over the sequences (one backward pass).</summary>
    /// <param name="model">The model.</param>
    /// <param name="sequences">The calibration sequences.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <param name="recompute">Recompute layers in the backward pass instead of keeping their graphs.</param>
    public static double[] Taylor(ICausalLMModule model, IReadOnlyList<IReadOnlyList<int>> sequences, CancellationToken cancellationToken, bool recompute = false)
    {
        var result = new double[model.Layers.Count];
        using var batch = PaddedBatch.Create(sequences, model.Device);
        LayerwiseBackward.Run(
            model,
            batch.Ids,
            logits => batch.SequenceLosses(logits).mean(),
            (layer, parameters, gradients) =>
            {
                using var scope = NewDisposeScope();
                double sum = 0;
                for (int i = 0; i < gradients.Count; i++)
                {
                    sum += (parameters[i].to_type(ScalarType.Float32) * gradients[i].to_type(ScalarType.Float32)).abs().sum().item<float>();
                }

                result[layer] = sum;
            },
            cancellationToken,
            recompute);
        return result;
    }
}
