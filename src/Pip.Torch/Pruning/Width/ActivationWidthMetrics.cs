using Pip.Torch.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning.Width;

/// <summary>
/// Per input channel of some projections, the sum and the sum of squares of the input over all calibration tokens,
/// collected by forward hooks (float64 accumulators) during forward passes that stop after the last layer needed.
/// </summary>
internal sealed class InputStatistics : IDisposable
{
    private readonly Dictionary<IntPtr, (Tensor Sum, Tensor SumOfSquares)> _stats = [];

    private InputStatistics()
    {
    }

    /// <summary>Tokens seen (the count behind every sum).</summary>
    public long Tokens { get; private set; }

    /// <summary>The options of a metric that collects input statistics (cloned; null: the defaults), checked.</summary>
    public static WidthMetricOptions CheckOptions(WidthMetricOptions? options)
    {
        var result = (options ?? new WidthMetricOptions()).Clone();
        ArgumentOutOfRangeException.ThrowIfLessThan(result.MaxTokens, 2, nameof(options));
        return result;
    }

    /// <summary>
    /// Collects the statistics over the request's calibration sequences (at most <paramref name="maxTokens"/> tokens),
    /// reporting one <see cref="ScoringProgress"/> of <paramref name="metric"/> per sequence.
    /// </summary>
    public static InputStatistics Collect(WidthImportanceRequest request, ICausalLMModule module, IReadOnlyList<(int Layer, Linear Linear)> targets, int maxTokens,
        string metric, CancellationToken cancellationToken)
    {
        var sequences = WidthUnitParts.Sequences(request, maxTokens, 1, metric);
        int done = 0;
        return Collect(module, targets, sequences, cancellationToken, () => request.Progress?.Report(new ScoringProgress(metric, ++done, sequences.Count)));
    }

    /// <summary>Runs the sequences one at a time through the layers up to the last one holding a target, under no_grad.</summary>
    public static InputStatistics Collect(ICausalLMModule module, IReadOnlyList<(int Layer, Linear Linear)> targets, IReadOnlyList<IReadOnlyList<int>> sequences,
        CancellationToken cancellationToken, Action? afterSequence)
    {
        var result = new InputStatistics();
        var hooks = new List<nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover>();
        try
        {
            using (no_grad())
            {
                foreach (var (_, linear) in targets)
                {
                    var weight = linear.weight!;
                    if (result._stats.ContainsKey(weight.Handle)) continue;
                    long inputs = weight.shape[1];
                    var sum = zeros(inputs, dtype: ScalarType.Float64, device: weight.device).DetachFromDisposeScope();
                    var squares = zeros(inputs, dtype: ScalarType.Float64, device: weight.device).DetachFromDisposeScope();
                    result._stats[weight.Handle] = (sum, squares);
                    hooks.Add(linear.register_forward_hook((_, input, output) =>
                    {
                        using var scope = NewDisposeScope();
                        var x = input.detach().reshape(-1, inputs).to_type(ScalarType.Float64);
                        // A variable, not the literal 0, which C# would turn into a ScalarType and sum everything.
                        long tokens = 0;
                        sum.add_(x.sum(tokens));
                        squares.add_(x.square().sum(tokens));
                        return output;
                    }));
                }
            }

            int last = targets.Max(t => t.Layer);
            foreach (var sequence in sequences)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var noGrad = no_grad();
                using var scope = NewDisposeScope();
                var ids = tensor(sequence.Select(t => (long)t).ToArray(), [1, sequence.Count], device: module.Device);
                using var context = module.CreateLayerContext(sequence.Count);
                var hidden = module.Embed(ids);
                for (int l = 0; l <= last; l++)
                {
                    hidden = module.ForwardLayer(l, hidden, context);
                }

                result.Tokens += sequence.Count;
                afterSequence?.Invoke();
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            foreach (var hook in hooks) hook.remove();
        }

        return result;
    }

    /// <summary>‖X_j‖₂ over all tokens, per input channel of a projection (float32).</summary>
    public Tensor Norms(Linear linear) => _stats[linear.weight!.Handle].SumOfSquares.sqrt().to_type(ScalarType.Float32);

    /// <summary>The mean of each input channel over all tokens.</summary>
    public double[] Means(Linear linear)
    {
        using var mean = (_stats[linear.weight!.Handle].Sum / Tokens).cpu();
        return mean.data<double>().ToArray();
    }

    /// <summary>The sample variance (N − 1 in the denominator) of each input channel over all tokens (float32).</summary>
    public Tensor Variances(Linear linear)
    {
        if (Tokens < 2) throw new InvalidOperationException("A variance needs at least two calibration tokens.");
        using var scope = NewDisposeScope();
        var (sum, squares) = _stats[linear.weight!.Handle];
        var variance = ((squares - sum.square() / Tokens) / (Tokens - 1)).clamp_min(0).to_type(ScalarType.Float32);
        return variance.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var (sum, squares) in _stats.Values)
        {
            sum.Dispose();
            squares.Dispose();
        }

        _stats.Clear();
    }
}

/// <summary>
/// Wanda-sp: for each projection a unit spans, Σ |W_ij|·‖X_j‖₂ over the unit's weights, X the projection's input over
/// all calibration tokens (input norms collected by forward hooks); the parts combine with the group reduction. Name
/// <c>wanda-sp</c>. Needs a <see cref="TorchCausalLM"/>.
/// </summary>
/// <remarks>
/// Wanda's score of a weight is |W_ij|·‖X_j‖₂; its structured variant (Wanda-sp, as in FLAP's baselines) sums it over
/// structures. FLAP's own baseline scores only the o_proj/down_proj columns and averages over rows; here every
/// projection of the group counts, as the group reduction of LLM-Pruner does.
/// </remarks>
public sealed class WandaSpWidthMetric : IWidthImportanceMetric
{
    private readonly WidthMetricOptions _options;

    /// <summary>Creates the metric.</summary>
    /// <param name="options">The options, or null for the defaults.</param>
    public WandaSpWidthMetric(WidthMetricOptions? options = null) => _options = InputStatistics.CheckOptions(options);

    /// <inheritdoc />
    public string Name => WidthMetricConstants.WandaSp;

    /// <inheritdoc />
    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = WidthUnitParts.Layers(request, module);
        var kinds = WidthUnitParts.Kinds(request.Units);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        if (layers.Count > 0)
        {
            var targets = layers.SelectMany(l => kinds.SelectMany(k => WidthUnitParts.Of(module.Layers[l], k)).Select(p => (l, p.Linear))).ToArray();
            using var stats = InputStatistics.Collect(request, module, targets, _options.MaxTokens, Name, cancellationToken);
            using var noGrad = no_grad();
            foreach (int l in layers)
            {
                foreach (var kind in kinds)
                {
                    scores[(l, kind)] = WidthUnitParts.Score(module.Layers[l], kind,
                        part => part.Linear.weight!.detach().to_type(ScalarType.Float32).abs() * stats.Norms(part.Linear).unsqueeze(0),
                        vectorwise: false, _options.GroupReduction);
                }
            }
        }

        return ValueTask.FromResult(new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores)));
    }
}

/// <summary>
/// FLAP's fluctuation metric (WIFV): for each input channel j of o_proj (heads) or down_proj (channels) (OPT: out_proj,
/// fc2), the sample variance of X_j over all calibration tokens times ‖W[:, j]‖²; a unit's score is the sum over its
/// channels (a key/value group: the G·head_dim o_proj inputs of its query heads; an OPT head: its head_dim inputs). It also gives the mean of those inputs, for
/// FLAP's bias compensation (<see cref="WidthPruningOptions.BiasCompensation"/>). Name <c>flap</c>. Needs a
/// <see cref="TorchCausalLM"/>.
/// </summary>
/// <remarks>FLAP's adaptive structure standardizes per-channel scores before averaging over a head; here units are
/// standardized after summing (see <see cref="WidthAllocator"/>). The group reduction does not apply (one part).</remarks>
public sealed class FlapWidthMetric : IWidthImportanceMetric
{
    private readonly WidthMetricOptions _options;

    /// <summary>Creates the metric.</summary>
    /// <param name="options">The options, or null for the defaults.</param>
    public FlapWidthMetric(WidthMetricOptions? options = null) => _options = InputStatistics.CheckOptions(options);

    /// <inheritdoc />
    public string Name => WidthMetricConstants.Flap;

    /// <inheritdoc />
    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = WidthUnitParts.Layers(request, module);
        var kinds = WidthUnitParts.Kinds(request.Units);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        var means = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        if (layers.Count > 0)
        {
            Linear Reader(int l, WidthUnitKind kind) => WidthUnitParts.Output(module.Layers[l], kind).Linear;
            var targets = layers.SelectMany(l => kinds.Select(k => (l, Reader(l, k)))).ToArray();
            using var stats = InputStatistics.Collect(request, module, targets, _options.MaxTokens, Name, cancellationToken);
            if (stats.Tokens < 2) throw new ArgumentException("FLAP's fluctuation needs at least two calibration tokens.", nameof(request));
            using var noGrad = no_grad();
            foreach (int l in layers)
            {
                foreach (var kind in kinds)
                {
                    var linear = Reader(l, kind);
                    int units = WidthUnitParts.Count(module.Layers[l], kind);
                    using var scope = NewDisposeScope();
                    var salience = linear.weight!.detach().to_type(ScalarType.Float32).square() * stats.Variances(linear).unsqueeze(0);
                    scores[(l, kind)] = WidthUnitParts.UnitSums(salience, WidthUnitParts.Axis.Columns, units, vectorwise: false);
                    means[(l, kind)] = stats.Means(linear);
                }
            }
        }

        return ValueTask.FromResult(new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores))
        {
            HeadInputMeans = WidthUnitParts.Collect(request, WidthUnitKind.Heads, means),
            ChannelInputMeans = WidthUnitParts.Collect(request, WidthUnitKind.Channels, means),
        });
    }
}

/// <summary>
/// Weight magnitude of width units: for each projection a unit spans, Σ W² over the unit's weights (the squared L2
/// norm; LLM-Pruner's magnitude importance with p = 2); the parts combine with the group reduction (with
/// <see cref="WidthGroupReduction.Sum"/>, the squared L2 norm of all the group's weights). Name <c>magnitude</c>.
/// Needs a <see cref="TorchCausalLM"/>; uses no calibration data.
/// </summary>
public sealed class MagnitudeWidthMetric : IWidthImportanceMetric
{
    private readonly WidthMetricOptions _options;

    /// <summary>Creates the metric.</summary>
    /// <param name="options">The options, or null for the defaults.</param>
    public MagnitudeWidthMetric(WidthMetricOptions? options = null) => _options = (options ?? new WidthMetricOptions()).Clone();

    /// <inheritdoc />
    public string Name => WidthMetricConstants.Magnitude;

    /// <inheritdoc />
    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = WidthUnitParts.Layers(request, module);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        using var noGrad = no_grad();
        foreach (int l in layers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var kind in WidthUnitParts.Kinds(request.Units))
            {
                scores[(l, kind)] = WidthUnitParts.Score(module.Layers[l], kind, part => part.Linear.weight!.detach().to_type(ScalarType.Float32).square(), vectorwise: false, _options.GroupReduction);
            }
        }

        request.Progress?.Report(new ScoringProgress(Name, 1, 1));
        return ValueTask.FromResult(new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores)));
    }
}
