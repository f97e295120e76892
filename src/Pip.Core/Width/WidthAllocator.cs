namespace Pip;

/// <summary>The width units of one layer that allocation works with.</summary>
/// <param name="Layer">Current layer index.</param>
/// <param name="Heads">Key/value groups in the layer.</param>
/// <param name="HeadParameters">Parameters of one key/value group (q/k/v rows, o_proj columns, biases).</param>
/// <param name="Channels">MLP channels in the layer.</param>
/// <param name="ChannelParameters">Parameters of one channel (gate/up rows, down_proj column, biases).</param>
public sealed record WidthLayerSizes(int Layer, int Heads, long HeadParameters, int Channels, long ChannelParameters)
{
    /// <summary>Reads the sizes of a layer from a model.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">Current layer index.</param>
    public static WidthLayerSizes Of(IWidthPrunableModel model, int layer)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new WidthLayerSizes(layer,
            model.GetUnitCount(layer, WidthUnitKind.Heads), model.GetUnitParameterCount(layer, WidthUnitKind.Heads),
            model.GetUnitCount(layer, WidthUnitKind.Channels), model.GetUnitParameterCount(layer, WidthUnitKind.Channels));
    }

    internal int Count(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? Heads : Channels;

    internal long Parameters(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? HeadParameters : ChannelParameters;
}

/// <summary>The units an allocation removes.</summary>
/// <param name="Heads">Current layer → key/value groups to remove (ascending); layers without removal are absent.</param>
/// <param name="Channels">Current layer → channels to remove (ascending); layers without removal are absent.</param>
/// <param name="RemovedParameters">Parameters the removal takes away (bias compensation not counted).</param>
/// <param name="TargetReached">Whether the budget is spent to within the allocation's granularity (see <see cref="WidthAllocator"/>).</param>
public sealed record WidthAllocationResult(
    IReadOnlyDictionary<int, IReadOnlyList<int>> Heads,
    IReadOnlyDictionary<int, IReadOnlyList<int>> Channels,
    long RemovedParameters,
    bool TargetReached);

/// <summary>Decides how many and which units each layer loses, from unit scores and a parameter budget.</summary>
/// <remarks>
/// <para>Within a layer the lowest-scoring units go first (ties: lower index first). At least one unit of each kind
/// always stays in every layer. The removed parameters never exceed the budget.</para>
/// <para>Uniform: with f = budget / (prunable parameters of the layers), each layer loses ⌊f · groups⌋ key/value
/// groups and, with the rest of its share f · (its prunable parameters), as many channels as fit. Every layer of one
/// shape thus gets the same shape, and the shortfall is less than one channel per layer (one key/value group per
/// layer when only heads are pruned): the target counts as reached when less than that step is left.</para>
/// <para>Adaptive (FLAP): the scores of each kind are standardized over all units of that kind in the given layers
/// ((s − mean) / standard deviation), then units are taken model-wide by ascending standardized score as long as they
/// fit in the budget (a unit that does not fit is skipped and smaller ones are still tried). The target counts as
/// reached when less than the smallest unit is left.</para>
/// </remarks>
public static class WidthAllocator
{
    private const double Slack = 1e-12;

    /// <summary>Allocates a removal.</summary>
    /// <param name="layers">The layers that may be pruned.</param>
    /// <param name="scores">Unit scores per current layer (the kinds in <paramref name="units"/> must be present for these layers).</param>
    /// <param name="units">Which kinds to prune.</param>
    /// <param name="allocation">Uniform or adaptive.</param>
    /// <param name="budget">Parameters to remove at most.</param>
    /// <exception cref="ArgumentException">Scores are missing or of the wrong length for a layer.</exception>
    public static WidthAllocationResult Allocate(IReadOnlyList<WidthLayerSizes> layers, WidthScores scores, WidthUnits units, WidthAllocation allocation, double budget)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentOutOfRangeException.ThrowIfNegative(budget);
        var kinds = Kinds(units);
        foreach (var kind in kinds)
        {
            var kindScores = scores.Of(kind) ?? throw new ArgumentException($"No {Name(kind)} scores were given, but {Name(kind)} are to be pruned.", nameof(scores));
            foreach (var l in layers)
            {
                if (l.Layer < 0 || l.Layer >= kindScores.Count || kindScores[l.Layer] is null || kindScores[l.Layer].Count != l.Count(kind))
                {
                    throw new ArgumentException($"Layer {l.Layer} has {l.Count(kind)} {Name(kind)} but {(l.Layer >= 0 && l.Layer < kindScores.Count ? kindScores[l.Layer]?.Count ?? 0 : 0)} scores were given.", nameof(scores));
                }

                if (kindScores[l.Layer].Any(double.IsNaN))
                {
                    throw new ArgumentException($"Layer {l.Layer}: a {Name(kind)} score is NaN.", nameof(scores));
                }
            }
        }

        return allocation == WidthAllocation.Adaptive
            ? Adaptive(layers, scores, kinds, budget)
            : Uniform(layers, scores, kinds, budget);
    }

    /// <summary>The kinds of a selection, heads first.</summary>
    /// <param name="units">The selection.</param>
    public static IReadOnlyList<WidthUnitKind> Kinds(WidthUnits units) =>
        [.. new[] { WidthUnitKind.Heads, WidthUnitKind.Channels }.Where(k => units.HasFlag(k == WidthUnitKind.Heads ? WidthUnits.Heads : WidthUnits.Channels))];

    private static WidthAllocationResult Uniform(IReadOnlyList<WidthLayerSizes> layers, WidthScores scores, IReadOnlyList<WidthUnitKind> kinds, double budget)
    {
        bool heads = kinds.Contains(WidthUnitKind.Heads), channels = kinds.Contains(WidthUnitKind.Channels);
        double prunable = layers.Sum(l => (heads ? (double)l.Heads * l.HeadParameters : 0) + (channels ? (double)l.Channels * l.ChannelParameters : 0));
        double fraction = prunable <= 0 ? 0 : budget / prunable;
        var headPlan = new Dictionary<int, IReadOnlyList<int>>();
        var channelPlan = new Dictionary<int, IReadOnlyList<int>>();
        long removed = 0;
        double step = 0;
        bool capped = false;
        foreach (var l in layers)
        {
            int kHeads = 0, kChannels = 0;
            if (heads)
            {
                int wanted = (int)Math.Floor(fraction * l.Heads * (1 + Slack));
                kHeads = Math.Min(Math.Max(0, l.Heads - 1), wanted);
                capped |= wanted > kHeads;
            }

            if (channels)
            {
                double share = fraction * ((heads ? (double)l.Heads * l.HeadParameters : 0) + (double)l.Channels * l.ChannelParameters);
                double left = share - (double)kHeads * l.HeadParameters;
                int wanted = l.ChannelParameters <= 0 ? 0 : (int)Math.Floor(Math.Max(0, left) / l.ChannelParameters * (1 + Slack));
                kChannels = Math.Min(Math.Max(0, l.Channels - 1), wanted);
                capped |= wanted > kChannels;
                step += l.ChannelParameters;
            }
            else
            {
                step += l.HeadParameters;
            }

            if (kHeads > 0) headPlan[l.Layer] = Lowest(scores.Heads![l.Layer], kHeads);
            if (kChannels > 0) channelPlan[l.Layer] = Lowest(scores.Channels![l.Layer], kChannels);
            removed += kHeads * l.HeadParameters + kChannels * l.ChannelParameters;
        }

        bool reached = !capped && (budget - removed < step || layers.Count == 0);
        return new WidthAllocationResult(headPlan, channelPlan, removed, reached);
    }

    private static WidthAllocationResult Adaptive(IReadOnlyList<WidthLayerSizes> layers, WidthScores scores, IReadOnlyList<WidthUnitKind> kinds, double budget)
    {
        var candidates = new List<(double Z, int Kind, int Layer, int Unit, long Parameters)>();
        foreach (var kind in kinds)
        {
            var kindScores = scores.Of(kind)!;
            var finite = layers.SelectMany(l => kindScores[l.Layer]).Where(double.IsFinite).ToArray();
            double mean = finite.Length == 0 ? 0 : finite.Average();
            double std = finite.Length < 2 ? 0 : Math.Sqrt(finite.Sum(s => (s - mean) * (s - mean)) / finite.Length);
            if (!(std > 0)) std = 1;
            foreach (var l in layers)
            {
                var s = kindScores[l.Layer];
                for (int u = 0; u < s.Count; u++)
                {
                    candidates.Add(((s[u] - mean) / std, (int)kind, l.Layer, u, l.Parameters(kind)));
                }
            }
        }

        candidates.Sort((a, b) => a.Z != b.Z ? a.Z.CompareTo(b.Z) : a.Layer != b.Layer ? a.Layer.CompareTo(b.Layer) : a.Kind != b.Kind ? a.Kind.CompareTo(b.Kind) : a.Unit.CompareTo(b.Unit));
        var left = layers.ToDictionary(l => l.Layer, l => new[] { l.Heads, l.Channels });
        var chosen = new[] { new Dictionary<int, List<int>>(), new Dictionary<int, List<int>>() };
        long removed = 0;
        double limit = budget * (1 + Slack);
        foreach (var c in candidates)
        {
            if (left[c.Layer][c.Kind] <= 1 || removed + c.Parameters > limit) continue;
            left[c.Layer][c.Kind]--;
            removed += c.Parameters;
            if (!chosen[c.Kind].TryGetValue(c.Layer, out var list)) chosen[c.Kind][c.Layer] = list = [];
            list.Add(c.Unit);
        }

        long smallest = layers.Count == 0 ? 0 : kinds.SelectMany(k => layers.Select(l => l.Parameters(k))).DefaultIfEmpty(0).Min();
        bool reached = budget - removed < smallest || layers.Count == 0;
        IReadOnlyDictionary<int, IReadOnlyList<int>> Sorted(Dictionary<int, List<int>> d) =>
            d.ToDictionary(p => p.Key, p => (IReadOnlyList<int>)[.. p.Value.Order()]);
        return new WidthAllocationResult(Sorted(chosen[0]), Sorted(chosen[1]), removed, reached);
    }

    /// <summary>The <paramref name="count"/> lowest-scoring indices (ties: lower index first), ascending.</summary>
    private static int[] Lowest(IReadOnlyList<double> scores, int count) =>
        [.. Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ThenBy(i => i).Take(count).Order()];

    private static string Name(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? "key/value groups" : "channels";
}
