using Pip.Torch.Models;
using Pip.Torch.Streaming;
using TorchSharp;
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
    private readonly List<nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover> _hooks = [];

    private InputStatistics()
    {
    }

    /// <summary>Tokens seen (the count behind every sum).</summary>
    public long Tokens { get; private set; }

    /// <summary>
    /// Empty statistics over <paramref name="tokens"/> tokens, filled by the hooks <see cref="Track"/> registers; disposing
    /// them removes the hooks.
    /// </summary>
    public static InputStatistics Create(long tokens) => new() { Tokens = tokens };

    /// <summary>
    /// Registers a forward hook on <paramref name="linear"/> that adds its input [batch, length, inputs] at the real
    /// tokens (<paramref name="mask"/>: [batch, length], 1 at real tokens, 0 at padding, float64) to the sums. Call under no_grad.
    /// </summary>
    public void Track(Linear linear, Tensor mask)
    {
        var weight = linear.weight!;
        if (_stats.ContainsKey(weight.Handle)) return;
        long inputs = weight.shape[1];
        var sum = zeros(inputs, dtype: ScalarType.Float64, device: weight.device).DetachFromDisposeScope();
        var squares = zeros(inputs, dtype: ScalarType.Float64, device: weight.device).DetachFromDisposeScope();
        _stats[weight.Handle] = (sum, squares);
        _hooks.Add(linear.register_forward_hook((_, input, output) =>
        {
            using var scope = NewDisposeScope();
            var flat = input.detach().reshape(-1, inputs);
            var flags = mask.reshape(-1, 1);
            // The whole padded batch arrives at once: convert it to float64 in slices of about 64 MiB.
            long rows = flat.shape[0], step = Math.Max(1, (64L << 20) / (inputs * sizeof(double)));
            for (long start = 0; start < rows; start += step)
            {
                using var slice = NewDisposeScope();
                long count = Math.Min(step, rows - start);
                var x = flat.narrow(0, start, count).to_type(ScalarType.Float64) * flags.narrow(0, start, count);
                long tokens = 0;
                sum.add_(x.sum(tokens));
                squares.add_(x.square().sum(tokens));
            }

            return output;
        }));
    }

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
        foreach (var hook in _hooks) hook.remove();
        _hooks.Clear();
        foreach (var (sum, squares) in _stats.Values)
        {
            sum.Dispose();
            squares.Dispose();
        }

        _stats.Clear();
    }
}

/// <summary>Input statistics of a model on the layer engine (streamed): one forward pass of all calibration sequences.</summary>
internal static class StreamedInputStatistics
{
    /// <summary>
    /// Runs the request's calibration sequences (at most <paramref name="maxTokens"/> tokens each) through the engine's
    /// layers as one right-padded batch; for each requested layer, collects the input statistics of the projections
    /// <paramref name="targets"/> names over the real tokens and gives them to <paramref name="score"/> with the layer
    /// (both valid during the call). Reports one <see cref="ScoringProgress"/> per scored layer.
    /// </summary>
    public static void Run(WidthImportanceRequest request, LayerEngine engine, int maxTokens, string metric,
        Func<nn.Module, IEnumerable<Linear>> targets, Action<int, nn.Module, InputStatistics> score, CancellationToken cancellationToken)
    {
        var layers = WidthUnitParts.Layers(request, engine.LayerCount);
        if (layers.Count == 0) return;
        var sequences = WidthUnitParts.Sequences(request, maxTokens, 1, metric);
        int length = sequences.Max(s => s.Count);
        var flags = new double[sequences.Count * length];
        for (int s = 0; s < sequences.Count; s++)
        {
            for (int t = 0; t < sequences[s].Count; t++) flags[s * length + t] = 1;
        }

        using var mask = tensor(flags, [sequences.Count, length], device: engine.Device);
        long tokens = sequences.Sum(s => (long)s.Count);
        InputStatistics? current = null;
        int done = 0;
        try
        {
            engine.ForwardWithHooks(sequences, (l, layer) =>
            {
                current?.Dispose();
                current = null;
                if (!layers.Contains(l)) return null;
                current = InputStatistics.Create(tokens);
                foreach (var linear in targets(layer)) current.Track(linear, mask);
                return current;
            }, activations =>
            {
                if (current is null) return;
                score(activations.Layer, activations.Module, current);
                request.Progress?.Report(new ScoringProgress(metric, ++done, layers.Count));
            }, null, cancellationToken);
        }
        finally
        {
            current?.Dispose();
        }
    }
}

/// <summary>
/// Wanda-sp: for each projection a unit spans, Σ |W_ij|·‖X_j‖₂ over the unit's weights, X the projection's input over
/// all calibration tokens (input norms collected by forward hooks); the parts combine with the group reduction. Name
/// <c>wanda-sp</c>. Needs a <see cref="TorchCausalLM"/> or a <see cref="StreamedCausalLM"/> (one forward pass on the
/// <see cref="LayerEngine"/>, all calibration sequences as one batch).
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
        var kinds = WidthUnitParts.Kinds(request.Units);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        void ScoreLayer(int l, nn.Module layer, InputStatistics stats)
        {
            using var noGrad = no_grad();
            foreach (var kind in kinds)
            {
                scores[(l, kind)] = WidthUnitParts.Score(layer, kind,
                    part => part.Linear.weight!.detach().to_type(ScalarType.Float32).abs() * stats.Norms(part.Linear).unsqueeze(0),
                    vectorwise: false, _options.GroupReduction);
            }
        }

        if (request.Model is StreamedCausalLM streamed)
        {
            StreamedInputStatistics.Run(request, streamed.Engine, _options.MaxTokens, Name,
                layer => kinds.SelectMany(k => WidthUnitParts.Of(layer, k)).Select(p => p.Linear), ScoreLayer, cancellationToken);
            return ValueTask.FromResult(new WidthScores(
                WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
                WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores)));
        }

        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = WidthUnitParts.Layers(request, module);
        if (layers.Count > 0)
        {
            var targets = layers.SelectMany(l => kinds.SelectMany(k => WidthUnitParts.Of(module.Layers[l], k)).Select(p => (l, p.Linear))).ToArray();
            using var stats = InputStatistics.Collect(request, module, targets, _options.MaxTokens, Name, cancellationToken);
            foreach (int l in layers) ScoreLayer(l, module.Layers[l], stats);
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
/// FLAP's bias compensation (<see cref="WidthPruningOptions.BiasCompensation"/>). Name <c>flap</c>. Needs a <see cref="StreamedCausalLM"/> (as Wanda-sp) or a
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
        var kinds = WidthUnitParts.Kinds(request.Units);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        var means = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        void ScoreLayer(int l, nn.Module layer, InputStatistics stats)
        {
            if (stats.Tokens < 2) throw new ArgumentException("FLAP's fluctuation needs at least two calibration tokens.", nameof(request));
            using var noGrad = no_grad();
            foreach (var kind in kinds)
            {
                var linear = WidthUnitParts.Output(layer, kind).Linear;
                int units = WidthUnitParts.Count(layer, kind);
                using var scope = NewDisposeScope();
                var salience = linear.weight!.detach().to_type(ScalarType.Float32).square() * stats.Variances(linear).unsqueeze(0);
                scores[(l, kind)] = WidthUnitParts.UnitSums(salience, WidthUnitParts.Axis.Columns, units, vectorwise: false);
                means[(l, kind)] = stats.Means(linear);
            }
        }

        if (request.Model is StreamedCausalLM streamed)
        {
            StreamedInputStatistics.Run(request, streamed.Engine, _options.MaxTokens, Name,
                layer => kinds.Select(k => WidthUnitParts.Output(layer, k).Linear), ScoreLayer, cancellationToken);
        }
        else
        {
            var module = TorchCausalLM.Require(request.Model, Name);
            var layers = WidthUnitParts.Layers(request, module);
            if (layers.Count > 0)
            {
                var targets = layers.SelectMany(l => kinds.Select(k => (l, WidthUnitParts.Output(module.Layers[l], k).Linear))).ToArray();
                using var stats = InputStatistics.Collect(request, module, targets, _options.MaxTokens, Name, cancellationToken);
                foreach (int l in layers) ScoreLayer(l, module.Layers[l], stats);
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
/// Needs a <see cref="TorchCausalLM"/> or a <see cref="StreamedCausalLM"/> (its layers visited one at a time); uses no calibration data.
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
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        void ScoreLayer(int l, nn.Module layer)
        {
            foreach (var kind in WidthUnitParts.Kinds(request.Units))
            {
                scores[(l, kind)] = WidthUnitParts.Score(layer, kind, part => part.Linear.weight!.detach().to_type(ScalarType.Float32).square(), vectorwise: false, _options.GroupReduction);
            }
        }

        if (request.Model is StreamedCausalLM streamed)
        {
            var wanted = WidthUnitParts.Layers(request, streamed.LayerCount);
            streamed.Engine.VisitWeights((l, layer) =>
            {
                if (wanted.Contains(l)) ScoreLayer(l, layer);
            }, cancellationToken);
        }
        else
        {
            var module = TorchCausalLM.Require(request.Model, Name);
            var layers = WidthUnitParts.Layers(request, module);
            using var noGrad = no_grad();
            foreach (int l in layers)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ScoreLayer(l, module.Layers[l]);
            }
        }

        request.Progress?.Report(new ScoringProgress(Name, 1, 1));
        return ValueTask.FromResult(new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores)));
    }
}
