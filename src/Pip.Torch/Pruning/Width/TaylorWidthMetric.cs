using Pip.Torch.Streaming;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning.Width;

/// <summary>The Taylor variants of LLM-Pruner.</summary>
public enum TaylorWidthOrder
{
    /// <summary>First order, element-wise: |W·g| (<c>param_first</c>).</summary>
    First,

    /// <summary>Second order with the diagonal Fisher approximation: ½·W²·F (<c>param_second</c>, which omits the ½; the order of units is the same).</summary>
    Second,

    /// <summary>Both: |W·g − ½·W²·F| (<c>param_mix</c>).</summary>
    Mix,

    /// <summary>Vector-wise first order: |Σ W·g| per weight row or column (<c>vectorize</c>).</summary>
    Vector,
}

/// <summary>
/// LLM-Pruner's Taylor importance of width units. g is the gradient of the mean causal-LM loss of the calibration
/// samples (one padded batch); F is the mean over samples of the squared gradient of each sample's own loss (one
/// backward pass per sample), the diagonal Fisher approximation of the Hessian. For each projection a unit spans, the
/// element saliences are summed over the unit's rows or columns (<see cref="TaylorWidthOrder.Vector"/>: the absolute
/// value of each row's or column's sum), and the parts combine with the group reduction. Names <c>taylor</c>,
/// <c>taylor-second</c>, <c>taylor-mix</c>, <c>taylor-vector</c>. Needs a <see cref="TorchCausalLM"/> or a <see cref="StreamedCausalLM"/> (one gradient pass of
/// the <see cref="LayerEngine"/>: the mean loss and, for the second-order variants, each sequence's own loss).
/// </summary>
/// <remarks>
/// Gradients come from <see cref="LayerwiseBackward"/>: only one layer's gradients exist at a time. The second-order
/// variants keep F for the projections of the scored layers (as much memory as those weights, in float32).
/// </remarks>
public sealed class TaylorWidthMetric : IWidthImportanceMetric
{
    private readonly TaylorWidthOrder _order;
    private readonly WidthMetricOptions _options;

    /// <summary>Creates the metric.</summary>
    /// <param name="order">The variant.</param>
    /// <param name="options">The options, or null for the defaults.</param>
    public TaylorWidthMetric(TaylorWidthOrder order = TaylorWidthOrder.First, WidthMetricOptions? options = null)
    {
        if (!Enum.IsDefined(order)) throw new ArgumentOutOfRangeException(nameof(order), order, "Unknown Taylor order.");
        _order = order;
        _options = (options ?? new WidthMetricOptions()).Clone();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxTokens, 2, nameof(options));
    }

    /// <inheritdoc />
    public string Name => _order switch
    {
        TaylorWidthOrder.Second => WidthMetricConstants.TaylorSecond,
        TaylorWidthOrder.Mix => WidthMetricConstants.TaylorMix,
        TaylorWidthOrder.Vector => WidthMetricConstants.TaylorVector,
        _ => WidthMetricConstants.Taylor,
    };

    /// <inheritdoc />
    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Model is StreamedCausalLM streamed) return ValueTask.FromResult(ScoreOnEngine(request, streamed.Engine, cancellationToken));
        var module = TorchCausalLM.Require(request.Model, Name);
        var layers = WidthUnitParts.Layers(request, module);
        var kinds = WidthUnitParts.Kinds(request.Units);
        var sequences = WidthUnitParts.Sequences(request, _options.MaxTokens, 2, Name);
        bool secondOrder = _order is TaylorWidthOrder.Second or TaylorWidthOrder.Mix;
        bool firstOrder = _order != TaylorWidthOrder.Second;
        int total = (secondOrder ? sequences.Count : 0) + (firstOrder ? 1 : 0);
        int done = 0;
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        var fisher = new Dictionary<IntPtr, Tensor>();
        try
        {
            if (secondOrder)
            {
                using (no_grad())
                {
                    foreach (int l in layers)
                        foreach (var kind in kinds)
                            foreach (var part in WidthUnitParts.Of(module.Layers[l], kind))
                                fisher[part.Linear.weight!.Handle] = zeros_like(part.Linear.weight!, dtype: ScalarType.Float32);
                }

                double weight = 1.0 / sequences.Count;
                foreach (var sequence in sequences)
                {
                    using var batch = PaddedBatch.Create([sequence], module.Device);
                    LayerwiseBackward.Run(module, batch.Ids, logits => batch.SequenceLosses(logits).sum(),
                        (layer, parameters, gradients) =>
                        {
                            if (!layers.Contains(layer)) return;
                            using var noGrad = no_grad();
                            for (int i = 0; i < parameters.Count; i++)
                            {
                                if (fisher.TryGetValue(parameters[i].Handle, out var f))
                                    f.add_(gradients[i].to_type(ScalarType.Float32).square(), alpha: weight);
                            }
                        },
                        cancellationToken, _options.RecomputeActivations);
                    request.Progress?.Report(new ScoringProgress(Name, ++done, total));
                }
            }

            if (firstOrder)
            {
                using var batch = PaddedBatch.Create(sequences, module.Device);
                LayerwiseBackward.Run(module, batch.Ids, logits => batch.SequenceLosses(logits).mean(),
                    (layer, parameters, gradients) =>
                    {
                        if (!layers.Contains(layer)) return;
                        using var noGrad = no_grad();
                        foreach (var kind in kinds)
                        {
                            scores[(layer, kind)] = WidthUnitParts.Score(module.Layers[layer], kind, part =>
                            {
                                var w = part.Linear.weight!.detach().to_type(ScalarType.Float32);
                                int i = IndexOf(parameters, part.Linear.weight!);
                                var wg = w * gradients[i].to_type(ScalarType.Float32);
                                return _order == TaylorWidthOrder.Mix ? wg - 0.5 * w.square() * fisher[part.Linear.weight!.Handle] : wg;
                            }, _order == TaylorWidthOrder.Vector, _options.GroupReduction);
                        }
                    },
                    cancellationToken, _options.RecomputeActivations);
                request.Progress?.Report(new ScoringProgress(Name, ++done, total));
            }
            else
            {
                using var noGrad = no_grad();
                foreach (int layer in layers)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    foreach (var kind in kinds)
                    {
                        scores[(layer, kind)] = WidthUnitParts.Score(module.Layers[layer], kind, part =>
                            0.5 * part.Linear.weight!.detach().to_type(ScalarType.Float32).square() * fisher[part.Linear.weight!.Handle],
                            vectorwise: false, _options.GroupReduction);
                    }
                }
            }
        }
        finally
        {
            foreach (var f in fisher.Values) f.Dispose();
        }

        return ValueTask.FromResult(new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores)));
    }

    /// <summary>
    /// All variants in one gradient pass of the engine: combination 0 is the mean loss (g), combinations 1…n (second
    /// order only) each sequence's own loss, whose squared gradients make F for the layer at hand only.
    /// </summary>
    private WidthScores ScoreOnEngine(WidthImportanceRequest request, LayerEngine engine, CancellationToken cancellationToken)
    {
        var layers = WidthUnitParts.Layers(request, engine.LayerCount);
        var kinds = WidthUnitParts.Kinds(request.Units);
        var scores = new Dictionary<(int Layer, WidthUnitKind Kind), double[]>();
        if (layers.Count > 0)
        {
            var sequences = WidthUnitParts.Sequences(request, _options.MaxTokens, 2, Name);
            bool secondOrder = _order is TaylorWidthOrder.Second or TaylorWidthOrder.Mix;
            var combinations = new List<LossCombination> { LossCombination.Mean(sequences) };
            if (secondOrder) combinations.AddRange(sequences.Select(LossCombination.Single));
            var gradients = new Dictionary<IntPtr, Tensor>();
            var fisher = new Dictionary<IntPtr, Tensor>();
            void Clear()
            {
                foreach (var t in gradients.Values.Concat(fisher.Values)) t.Dispose();
                gradients.Clear();
                fisher.Clear();
            }

            int done = 0;
            try
            {
                engine.Gradients(combinations, visit =>
                {
                    if (!layers.Contains(visit.Layer)) return;
                    using var noGrad = no_grad();
                    var parts = kinds.SelectMany(k => WidthUnitParts.Of(visit.Module, k)).ToArray();
                    if (visit.Combination == 0)
                    {
                        Clear();
                        foreach (var part in parts)
                        {
                            var weight = part.Linear.weight!;
                            gradients[weight.Handle] = visit.Gradients[IndexOf(visit.Parameters, weight)].to_type(ScalarType.Float32).clone().DetachFromDisposeScope();
                            if (secondOrder) fisher[weight.Handle] = zeros_like(weight, dtype: ScalarType.Float32).DetachFromDisposeScope();
                        }
                    }
                    else
                    {
                        foreach (var part in parts)
                        {
                            var weight = part.Linear.weight!;
                            fisher[weight.Handle].add_(visit.Gradients[IndexOf(visit.Parameters, weight)].to_type(ScalarType.Float32).square(), alpha: 1.0 / sequences.Count);
                        }
                    }

                    if (visit.Combination != combinations.Count - 1) return;
                    foreach (var kind in kinds)
                    {
                        scores[(visit.Layer, kind)] = WidthUnitParts.Score(visit.Module, kind, part =>
                        {
                            var weight = part.Linear.weight!;
                            var w = weight.detach().to_type(ScalarType.Float32);
                            return _order switch
                            {
                                TaylorWidthOrder.Second => 0.5 * w.square() * fisher[weight.Handle],
                                TaylorWidthOrder.Mix => w * gradients[weight.Handle] - 0.5 * w.square() * fisher[weight.Handle],
                                _ => w * gradients[weight.Handle],
                            };
                        }, _order == TaylorWidthOrder.Vector, _options.GroupReduction);
                    }

                    Clear();
                    request.Progress?.Report(new ScoringProgress(Name, ++done, layers.Count));
                }, _options.RecomputeActivations, null, cancellationToken);
            }
            finally
            {
                Clear();
            }
        }

        return new WidthScores(
            WidthUnitParts.Collect(request, WidthUnitKind.Heads, scores),
            WidthUnitParts.Collect(request, WidthUnitKind.Channels, scores));
    }

    private static int IndexOf(IReadOnlyList<Tensor> parameters, Tensor weight)
    {
        for (int i = 0; i < parameters.Count; i++)
        {
            if (parameters[i].Handle == weight.Handle) return i;
        }

        throw new InvalidOperationException("A projection weight is not among its layer's parameters.");
    }
}
