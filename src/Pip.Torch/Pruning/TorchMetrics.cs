using Pip.Torch.Models;
using Pip.Torch.Streaming;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning;

/// <summary>How PertImport accumulates over the calibration set.</summary>
public enum PertImportAggregation
{
    /// <summary>Norm of each sample's gradient difference, then the mean over samples (the default).</summary>
    PerSampleMean,
    /// <summary>Norm of the gradient difference summed over all samples (one backward pass for the whole set).</summary>
    SummedDifference,
}

/// <summary>
/// PIP's PertImport: for each calibration text x and its perturbed twin x′, the norm of ∇L(x) − ∇L(x′) with respect to
/// a decoder layer's parameters, divided by the layer's parameter count. A layer that cannot tell the two views apart
/// scores low and is pruned first. Name <c>pip</c>.
/// </summary>
/// <remarks>
/// <para>The difference is computed with ONE backward pass of L(x) − L(x′) per pair (both views in one batch), not
/// two, and each layer's gradient is reduced as soon as it exists (<see cref="LayerwiseBackward"/>). Norms are
/// accumulated in float32/float64 whatever the model's type.</para>
/// <para>Scores are given for each perturbation set (for the consistency discriminator) and averaged over sets.</para>
/// <para>Runs on the <see cref="LayerEngine"/>: a <see cref="TorchCausalLM"/> in memory or a <see cref="StreamedCausalLM"/>, with the same numbers.</para>
/// </remarks>
public sealed class PerturbationImportanceMetric : IImportanceMetric
{
    private readonly INormAggregator _norm;
    private readonly PertImportAggregation _aggregation;
    private readonly int _maxTokens;
    private readonly bool _recompute;

    /// <summary>Creates the metric.</summary>
    /// <param name="norm">The norm of the gradient difference (PIP's default is L2).</param>
    /// <param name="aggregation">How to accumulate over samples.</param>
    /// <param name="maxTokens">Token ids of each view are cut to this length.</param>
    /// <param name="recompute">Recompute layers in the backward pass instead of keeping their graphs.</param>
    public PerturbationImportanceMetric(INormAggregator norm, PertImportAggregation aggregation = PertImportAggregation.PerSampleMean, int maxTokens = 128, bool recompute = false)
    {
        _recompute = recompute;
        ArgumentNullException.ThrowIfNull(norm);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        _norm = norm;
        _aggregation = aggregation;
        _maxTokens = maxTokens;
    }

    /// <inheritdoc />
    public string Name => TorchMetricConstants.PertImport;

    /// <inheritdoc />
    public bool UsesPerturbations => true;

    /// <inheritdoc />
    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.PerturbationSets.Count == 0) throw new ArgumentException("PertImport needs at least one perturbation set.", nameof(request));
        var engine = LayerEngine.For(request.Model);
        var originals = request.Samples.Select(s => request.Model.Tokenize(s.Text, _maxTokens)).ToArray();
        var perSet = new List<IReadOnlyList<double>>();
        var progress = new LayerScoringProgress(Name, request.Progress, request.PerturbationSets.Count * GradientNorms.Steps(engine, _aggregation == PertImportAggregation.PerSampleMean ? originals.Length : 1));
        foreach (var set in request.PerturbationSets)
        {
            var twins = set.Select(p => request.Model.Tokenize(p.Text, _maxTokens)).ToArray();
            if (twins.Length != originals.Length) throw new ArgumentException("Each perturbation set must hold one twin per sample.", nameof(request));
            var combinations = _aggregation == PertImportAggregation.PerSampleMean
                ? originals.Select((o, i) => LossCombination.Difference(o, twins[i])).ToArray()
                : [new LossCombination([.. originals, .. twins], [.. originals.Select(_ => 1.0), .. twins.Select(_ => -1.0)])];
            perSet.Add(GradientNorms.MeanNormPerParameter(engine, combinations, _norm, _recompute, progress, cancellationToken));
        }

        var mean = Enumerable.Range(0, engine.LayerCount).Select(l => perSet.Average(s => s[l])).ToArray();
        return ValueTask.FromResult(new LayerScores(mean, perSet));
    }

}

/// <summary>
/// Plain gradient magnitude: the norm of ∇L(x) per layer, divided by its parameter count, mean over samples (PIP's
/// "iteration only" ablation: no perturbation). Name <c>gradient</c>. Runs on the <see cref="LayerEngine"/> (in memory or streamed).
/// </summary>
public sealed class GradientNormMetric : IImportanceMetric
{
    private readonly INormAggregator _norm;
    private readonly int _maxTokens;
    private readonly bool _recompute;

    /// <summary>Creates the metric.</summary>
    /// <param name="norm">The norm.</param>
    /// <param name="maxTokens">Token ids of each sample are cut to this length.</param>
    /// <param name="recompute">Recompute layers in the backward pass instead of keeping their graphs.</param>
    public GradientNormMetric(INormAggregator norm, int maxTokens = 128, bool recompute = false)
    {
        _recompute = recompute;
        ArgumentNullException.ThrowIfNull(norm);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        _norm = norm;
        _maxTokens = maxTokens;
    }

    /// <inheritdoc />
    public string Name => TorchMetricConstants.GradientNorm;

    /// <inheritdoc />
    public bool UsesPerturbations => false;

    /// <inheritdoc />
    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = LayerEngine.For(request.Model);
        var combinations = request.Samples.Select(s => LossCombination.Single(request.Model.Tokenize(s.Text, _maxTokens))).ToArray();
        if (combinations.Length == 0) throw new ArgumentException("At least one calibration sample is needed.", nameof(request));
        var progress = new LayerScoringProgress(Name, request.Progress, GradientNorms.Steps(engine, combinations.Length));
        var scores = GradientNorms.MeanNormPerParameter(engine, combinations, _norm, _recompute, progress, cancellationToken);
        return ValueTask.FromResult(new LayerScores(scores));
    }

}

/// <summary>
/// Taylor importance of Shortened LLaMA (Taylor+): Σ over the layer's weights of |w · ∂L/∂w|, L the causal-LM loss of
/// the calibration set. Name <c>taylor</c>. Runs on the <see cref="LayerEngine"/> (in memory or streamed).
/// </summary>
public sealed class TaylorMetric : IImportanceMetric
{
    private readonly int _maxTokens;
    private readonly bool _recompute;

    /// <summary>Creates the metric.</summary>
    /// <param name="maxTokens">Token ids of each sample are cut to this length.</param>
    /// <param name="recompute">Recompute layers in the backward pass instead of keeping their graphs.</param>
    public TaylorMetric(int maxTokens = 128, bool recompute = false)
    {
        _recompute = recompute;
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        _maxTokens = maxTokens;
    }

    /// <inheritdoc />
    public string Name => TorchMetricConstants.Taylor;

    /// <inheritdoc />
    public bool UsesPerturbations => false;

    /// <inheritdoc />
    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = LayerEngine.For(request.Model);
        var sequences = request.Samples.Select(s => request.Model.Tokenize(s.Text, _maxTokens)).ToArray();
        if (sequences.Length == 0) throw new ArgumentException("At least one calibration sample is needed.", nameof(request));
        var result = new double[engine.LayerCount];
        // Streamed: a step per layer and phase (forward, head, backward); in memory: a step per layer differentiated.
        var progress = new LayerScoringProgress(Name, request.Progress, engine.IsStreaming ? LayerScoringProgress.PassSteps(engine) : engine.LayerCount);
        engine.Gradients([LossCombination.Mean(sequences)], layer =>
        {
            using var scope = NewDisposeScope();
            double sum = 0;
            for (int i = 0; i < layer.Gradients.Count; i++)
                sum += (layer.Parameters[i].to_type(ScalarType.Float32) * layer.Gradients[i].to_type(ScalarType.Float32)).abs().sum().item<float>();
            result[layer.Layer] = sum;
            if (!engine.IsStreaming) progress.Step();
        }, _recompute, engine.IsStreaming ? progress : null, cancellationToken);
        return ValueTask.FromResult(new LayerScores(result));
    }
}

/// <summary>Weight magnitude: the mean |w| over a layer's parameters. Name <c>magnitude</c>. Runs on the <see cref="LayerEngine"/> (in memory or streamed).</summary>
public sealed class MagnitudeMetric : IImportanceMetric
{
    /// <inheritdoc />
    public string Name => TorchMetricConstants.Magnitude;

    /// <inheritdoc />
    public bool UsesPerturbations => false;

    /// <inheritdoc />
    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = LayerEngine.For(request.Model);
        var scores = new double[engine.LayerCount];
        engine.VisitWeights((l, layer) =>
        {
            using var scope = NewDisposeScope();
            double sum = 0;
            long count = 0;
            foreach (var p in layer.parameters())
            {
                sum += p.to_type(ScalarType.Float32).abs().sum().item<float>();
                count += p.numel();
            }

            scores[l] = sum / count;
        }, cancellationToken);
        return ValueTask.FromResult(new LayerScores(scores));
    }
}

/// <summary>
/// ShortGPT's Block Influence: 1 − the mean cosine similarity between a layer's input and output hidden states over
/// the calibration tokens. A layer that barely changes its input scores near 0 and is pruned first. Name
/// <c>block-influence</c>. Runs on the <see cref="LayerEngine"/> (in memory or streamed).
/// </summary>
public sealed class BlockInfluenceMetric : IImportanceMetric
{
    private readonly int _maxTokens;

    /// <summary>Creates the metric.</summary>
    /// <param name="maxTokens">Token ids of each sample are cut to this length.</param>
    public BlockInfluenceMetric(int maxTokens = 128)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        _maxTokens = maxTokens;
    }

    /// <inheritdoc />
    public string Name => TorchMetricConstants.BlockInfluence;

    /// <inheritdoc />
    public bool UsesPerturbations => false;

    /// <inheritdoc />
    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = LayerEngine.For(request.Model);
        var sequences = request.Samples.Select(s => request.Model.Tokenize(s.Text, _maxTokens)).Where(ids => ids.Count > 0).ToArray();
        var sums = new double[engine.LayerCount];
        long tokens = sequences.Sum(s => (long)s.Count);
        var progress = new LayerScoringProgress(Name, request.Progress, engine.LayerCount);
        if (tokens > 0)
        {
            engine.Forward(sequences, layer =>
            {
                using var scope = NewDisposeScope();
                var cos = nn.functional.cosine_similarity(layer.Input.to_type(ScalarType.Float32), layer.Output.to_type(ScalarType.Float32), dim: -1);
                sums[layer.Layer] = (cos * layer.TokenMask).to_type(ScalarType.Float64).sum().item<double>();
                progress.Step();
            }, null, cancellationToken);
        }

        if (tokens == 0) throw new ArgumentException("Block influence needs at least one calibration token; the samples are empty.", nameof(request));
        return ValueTask.FromResult(new LayerScores(sums.Select(s => 1.0 - s / tokens).ToArray()));
    }
}

/// <summary>Per-layer gradient norms of loss combinations on a <see cref="LayerEngine"/>.</summary>
internal static class GradientNorms
{
    /// <summary>
    /// Progress steps of one <see cref="MeanNormPerParameter"/> call: one per combination in memory (each is a pass), one
    /// per layer and phase when streaming (all combinations go through each layer together, forward then backward, and
    /// the head between), so that a progress bar moves during the forward and head phases too.
    /// </summary>
    public static int Steps(LayerEngine engine, int combinations) => engine.IsStreaming ? LayerScoringProgress.PassSteps(engine) : combinations;

    /// <summary>
    /// For each combination, the norm of its gradient with respect to each layer's parameters divided by the layer's
    /// parameter count; the mean over combinations, one value per layer.
    /// </summary>
    public static double[] MeanNormPerParameter(LayerEngine engine, IReadOnlyList<LossCombination> combinations, INormAggregator norm, bool recompute, LayerScoringProgress progress, CancellationToken cancellationToken)
    {
        var sums = new double[engine.LayerCount];
        engine.Gradients(combinations, layer =>
        {
            var parts = new double[layer.Gradients.Count];
            for (int i = 0; i < parts.Length; i++) parts[i] = LayerwiseBackward.Norm(layer.Gradients[i], norm.Order);
            sums[layer.Layer] += norm.Combine(parts) / layer.ParameterCount;
            if (!engine.IsStreaming && layer.Layer == 0) progress.Step();
        }, recompute, engine.IsStreaming ? progress : null, cancellationToken);
        return sums.Select(s => s / combinations.Count).ToArray();
    }
}

/// <summary>
/// Reports <see cref="ScoringProgress"/> steps of a metric (a loss combination done, or a layer visited); as an
/// <see cref="IProgress{T}"/> of <see cref="LayerPassProgress"/>, every layer of every phase of an engine pass is a step.
/// </summary>
internal sealed class LayerScoringProgress(string metric, IProgress<ScoringProgress>? progress, int total) : IProgress<LayerPassProgress>
{
    private int _done;

    /// <summary>The steps of one gradient pass reported per phase: every layer forward, the head, every layer backward.</summary>
    public static int PassSteps(LayerEngine engine) => 2 * engine.LayerCount + 1;

    public void Step() => progress?.Report(new ScoringProgress(metric, ++_done, total));

    public void Report(LayerPassProgress value) => Step();
}

/// <summary>Tokenization helpers shared by the metrics.</summary>
internal static class PrunableModelExtensions
{
    /// <summary>The model's token ids of a text, cut to at most <paramref name="maxTokens"/>.</summary>
    public static IReadOnlyList<int> Tokenize(this IPrunableModel model, string text, int maxTokens)
    {
        var ids = model.Tokenize(text);
        return ids.Count <= maxTokens ? ids : ids.Take(maxTokens).ToArray();
    }
}
