using Pip.Torch.Models;
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
/// <para>Needs a <see cref="TorchCausalLM"/>.</para>
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
        var module = TorchCausalLM.Require(request.Model, Name);
        var originals = request.Samples.Select(s => request.Model.Tokenize(s.Text, _maxTokens)).ToArray();
        int total = request.PerturbationSets.Count * (_aggregation == PertImportAggregation.PerSampleMean ? originals.Length : 1);
        int done = 0;
        var perSet = new List<IReadOnlyList<double>>();
        foreach (var set in request.PerturbationSets)
        {
            var twins = set.Select(p => request.Model.Tokenize(p.Text, _maxTokens)).ToArray();
            if (twins.Length != originals.Length) throw new ArgumentException("Each perturbation set must hold one twin per sample.", nameof(request));
            var groups = new List<IReadOnlyList<IReadOnlyList<int>>>();
            var signs = new List<IReadOnlyList<double>>();
            if (_aggregation == PertImportAggregation.PerSampleMean)
            {
                for (int i = 0; i < originals.Length; i++)
                {
                    groups.Add([originals[i], twins[i]]);
                    signs.Add([1.0, -1.0]);
                }
            }
            else
            {
                groups.Add([.. originals, .. twins]);
                signs.Add([.. originals.Select(_ => 1.0), .. twins.Select(_ => -1.0)]);
            }

            perSet.Add(GradientScoring.MeanNormPerParameter(module, groups, signs, _norm, cancellationToken,
                () => request.Progress?.Report(new ScoringProgress(Name, ++done, total)), _recompute));
        }

        var mean = Enumerable.Range(0, module.Layers.Count).Select(l => perSet.Average(s => s[l])).ToArray();
        return ValueTask.FromResult(new LayerScores(mean, perSet));
    }

}

/// <summary>
/// Plain gradient magnitude: the norm of ∇L(x) per layer, divided by its parameter count, mean over samples (PIP's
/// "iteration only" ablation: no perturbation). Name <c>gradient</c>. Needs a <see cref="TorchCausalLM"/>.
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
        var module = TorchCausalLM.Require(request.Model, Name);
        var groups = request.Samples.Select(s => (IReadOnlyList<IReadOnlyList<int>>)[request.Model.Tokenize(s.Text, _maxTokens)]).ToArray();
        var signs = groups.Select(_ => (IReadOnlyList<double>)[1.0]).ToArray();
        int done = 0;
        var scores = GradientScoring.MeanNormPerParameter(module, groups, signs, _norm, cancellationToken,
            () => request.Progress?.Report(new ScoringProgress(Name, ++done, groups.Length)), _recompute);
        return ValueTask.FromResult(new LayerScores(scores));
    }

}

/// <summary>
/// Taylor importance of Shortened LLaMA (Taylor+): Σ over the layer's weights of |w · ∂L/∂w|, L the causal-LM loss of
/// the calibration set. Name <c>taylor</c>. Needs a <see cref="TorchCausalLM"/>.
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
        var module = TorchCausalLM.Require(request.Model, Name);
        var sequences = request.Samples.Select(s => request.Model.Tokenize(s.Text, _maxTokens)).ToArray();
        return ValueTask.FromResult(new LayerScores(GradientScoring.Taylor(module, sequences, cancellationToken, _recompute)));
    }
}

/// <summary>Weight magnitude: the mean |w| over a layer's parameters. Name <c>magnitude</c>. Needs a <see cref="TorchCausalLM"/>.</summary>
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
        var module = TorchCausalLM.Require(request.Model, Name);
        using var noGrad = no_grad();
        var scores = module.Layers.Select(layer =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            double sum = 0;
            long count = 0;
            foreach (var p in layer.parameters())
            {
                sum += p.to_type(ScalarType.Float32).abs().sum().item<float>();
                count += p.numel();
            }

            return sum / count;
        }).ToArray();
        return ValueTask.FromResult(new LayerScores(scores));
    }
}

/// <summary>
/// ShortGPT's Block Influence: 1 − the mean cosine similarity between a layer's input and output hidden states over
/// the calibration tokens. A layer that barely changes its input scores near 0 and is pruned first. Name
/// <c>block-influence</c>. Needs a <see cref="TorchCausalLM"/>.
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
        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = module.Layers;
        var sums = new double[layers.Count];
        long tokens = 0;
        using var noGrad = no_grad();
        foreach (var sample in request.Samples)
        {
            var ids = request.Model.Tokenize(sample.Text, _maxTokens);
            if (ids.Count == 0) continue;
            using var scope = NewDisposeScope();
            var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count], device: module.Device);
            using var context = module.CreateLayerContext(ids.Count);
            var hidden = module.Embed(input);
            for (int l = 0; l < layers.Count; l++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var output = module.ForwardLayer(l, hidden, context);
                var cos = nn.functional.cosine_similarity(hidden.to_type(ScalarType.Float32), output.to_type(ScalarType.Float32), dim: -1);
                sums[l] += cos.sum().item<float>();
                hidden = output;
            }

            tokens += ids.Count;
        }

        if (tokens == 0) throw new ArgumentException("Block influence needs at least one calibration token; the samples are empty.", nameof(request));
        return ValueTask.FromResult(new LayerScores(sums.Select(s => 1.0 - s / tokens).ToArray()));
    }
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
