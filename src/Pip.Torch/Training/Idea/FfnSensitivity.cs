using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Training.Idea;

/// <summary>
/// Gradient-sensitivity scores of FFN (MLP intermediate) neurons: neuron c of a layer scores
/// <c>‖ |W ⊙ ∂L/∂W| ‖₂</c> over its gate_proj row, up_proj row and down_proj column together (the first-order Taylor
/// estimate of the loss change from zeroing each weight, aggregated by L2 over the neuron's weights).
/// </summary>
public static class FfnSensitivity
{
    /// <summary>The scores from the gradients currently held by the MLP weights (after a backward pass).</summary>
    /// <param name="model">The model.</param>
    /// <returns>Per layer, one score per intermediate channel.</returns>
    /// <exception cref="InvalidOperationException">An MLP weight has no gradient.</exception>
    public static float[][] FromGradients(LlamaForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var result = new float[model.Layers.Count][];
        for (int l = 0; l < model.Layers.Count; l++)
        {
            var mlp = model.Layers[l].Mlp;
            var gate = Saliency(mlp.GateProj.weight!, l, "gate_proj").square().sum(dim: 1);
            var up = Saliency(mlp.UpProj.weight!, l, "up_proj").square().sum(dim: 1);
            var down = Saliency(mlp.DownProj.weight!, l, "down_proj").square().sum(dim: 0);
            result[l] = (gate + up + down).sqrt().to(ScalarType.Float32).cpu().data<float>().ToArray();
        }
        return result;
    }

    /// <summary>
    /// One-shot scores: the mean, over <paramref name="batchCount"/> batches of <paramref name="data"/> (the first
    /// sequences, in order), of the per-batch scores (<see cref="FromGradients"/> after one backward pass each). The
    /// weights are not changed; the gradients are cleared before and after.
    /// </summary>
    /// <param name="model">The model (its parameters must require gradients).</param>
    /// <param name="data">The sequences to score on.</param>
    /// <param name="batchCount">The number of batches (at least 1).</param>
    /// <param name="batchSize">Sequences per batch (at least 1).</param>
    /// <param name="loss">The objective, or null for the cross-entropy.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>Per layer, one score per intermediate channel.</returns>
    /// <exception cref="ArgumentException">The data hold fewer than <paramref name="batchCount"/> × <paramref name="batchSize"/> sequences.</exception>
    public static float[][] Accumulate(LlamaForCausalLM model, PackedSequences data, int batchCount, int batchSize, TrainingLoss? loss = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if ((long)batchCount * batchSize > data.Count)
            throw new ArgumentException($"{batchCount} batches of {batchSize} need {(long)batchCount * batchSize} sequences; the data have {data.Count}.", nameof(data));
        loss ??= CausalLMTrainer.CrossEntropyLoss;
        float[][]? sum = null;
        bool wasTraining = model.training;
        model.eval(); // no dropout in these models, but keep the scores independent of the mode's other effects
        try
        {
            for (int b = 0; b < batchCount; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                model.zero_grad();
                using (var scope = NewDisposeScope())
                {
                    using var batch = data.CreateBatch(Enumerable.Range(b * batchSize, batchSize).ToArray(), model.Device);
                    loss(model, batch).backward();
                }
                var scores = FromGradients(model);
                if (sum is null) sum = scores;
                else
                    for (int l = 0; l < sum.Length; l++)
                        for (int c = 0; c < sum[l].Length; c++) sum[l][c] += scores[l][c];
            }
        }
        finally
        {
            model.zero_grad();
            if (wasTraining) model.train();
        }
        foreach (var layer in sum!)
            for (int c = 0; c < layer.Length; c++) layer[c] /= batchCount;
        return sum;
    }

    /// <summary>The channels to remove so that <paramref name="keep"/> remain: the lowest-scored (ties: lower index first), ascending.</summary>
    /// <param name="scores">One score per channel.</param>
    /// <param name="keep">The channels to keep, in [1, scores.Length].</param>
    /// <param name="excluded">Channels already removed (not counted, not chosen), or null.</param>
    /// <returns>The channel indices to remove (besides <paramref name="excluded"/>), ascending.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="keep"/> is out of range.</exception>
    public static int[] LowestChannels(IReadOnlyList<float> scores, int keep, IReadOnlyList<bool>? excluded = null)
    {
        ArgumentNullException.ThrowIfNull(scores);
        var alive = Enumerable.Range(0, scores.Count).Where(c => excluded is null || !excluded[c]).ToList();
        if (keep < 1 || keep > alive.Count)
            throw new ArgumentOutOfRangeException(nameof(keep), keep, $"Between 1 and {alive.Count} (the remaining channels) can be kept.");
        return alive.OrderBy(c => scores[c]).ThenBy(c => c).Take(alive.Count - keep).Order().ToArray();
    }

    /// <summary>Physically removes, in every layer, all but the <paramref name="keep"/> highest-scored channels (<see cref="WidthPruner"/>).</summary>
    /// <param name="model">The model.</param>
    /// <param name="scores">Per layer, one score per channel.</param>
    /// <param name="keep">The width every layer keeps.</param>
    /// <returns>The model's new (homogeneous) configuration.</returns>
    /// <exception cref="ArgumentException">The scores do not match the model's layers.</exception>
    public static LlamaConfig PruneToWidth(LlamaForCausalLM model, IReadOnlyList<IReadOnlyList<float>> scores, int keep)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Count != model.Layers.Count)
            throw new ArgumentException($"{scores.Count} layers of scores for a model of {model.Layers.Count} layers.", nameof(scores));
        var channels = new Dictionary<int, IReadOnlyCollection<int>>();
        for (int l = 0; l < scores.Count; l++)
        {
            if (scores[l].Count != model.Layers[l].Mlp.IntermediateSize)
                throw new ArgumentException($"Layer {l}: {scores[l].Count} scores for {model.Layers[l].Mlp.IntermediateSize} channels.", nameof(scores));
            channels[l] = LowestChannels(scores[l], keep);
        }
        return model.Prune(new WidthPruningPlan { Channels = channels });
    }

    private static Tensor Saliency(Tensor weight, int layer, string name)
    {
        var grad = weight.grad ?? throw new InvalidOperationException($"Layer {layer} {name} has no gradient: run a backward pass first (and keep its requires_grad on).");
        return (weight.detach().to(ScalarType.Float32) * grad.to(ScalarType.Float32)).abs();
    }
}
