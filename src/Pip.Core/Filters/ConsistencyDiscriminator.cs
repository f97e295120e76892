using System.Globalization;

namespace Pip;

/// <summary>
/// Distrusts layers whose scores vary too much across independent perturbation sets: a layer whose coefficient of
/// variation (std / |mean|) exceeds the threshold is not a candidate in that round.
/// </summary>
/// <remarks>
/// Passes every candidate through when the metric gives no per-set scores or fewer than two sets. When too few
/// candidates would pass (none, by default), the most consistent ones stay candidates and the other exclusions'
/// reasons say so. A zero mean with zero spread has CV 0; a zero mean with spread, or a NaN, has infinite CV.
/// Stateless and thread-safe.
/// </remarks>
internal sealed class ConsistencyDiscriminator : ICandidateFilter
{
    private readonly double _threshold;
    private readonly int _minimumCandidates;

    public ConsistencyDiscriminator(ConsistencyDiscriminatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _threshold = options.Threshold;
        _minimumCandidates = options.MinimumCandidates;
    }

    public string Name => ConsistencyDiscriminatorConstants.Name;

    public CandidateFilterResult Filter(IPrunableModel model, LayerScores scores, IReadOnlyList<int> candidates)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(candidates);
        IReadOnlyList<IReadOnlyList<double>>? sets = scores.PerPerturbationSet;
        if (sets is null || sets.Count < 2)
        {
            return new CandidateFilterResult([.. candidates], new Dictionary<int, string>());
        }

        var cv = new Dictionary<int, double>(candidates.Count);
        foreach (int layer in candidates)
        {
            cv[layer] = CoefficientOfVariation(sets, layer);
        }

        var kept = candidates.Where(l => cv[l] <= _threshold).ToList();
        var excluded = candidates.Where(l => !(cv[l] <= _threshold)).ToList();
        string note = string.Empty;
        int needed = Math.Min(_minimumCandidates, candidates.Count) - kept.Count;
        if (needed > 0)
        {
            List<int> readmitted = [.. excluded.OrderBy(l => cv[l]).ThenBy(l => l).Take(needed)];
            var passed = new HashSet<int>(kept);
            kept = [.. candidates.Where(l => passed.Contains(l) || readmitted.Contains(l))];
            excluded.RemoveAll(readmitted.Contains);
            note = string.Create(CultureInfo.InvariantCulture,
                $"; too few layers passed, so the most consistent {(readmitted.Count == 1 ? "layer" : "layers")} " +
                $"{string.Join(", ", readmitted.Select(l => $"{l} (CV {cv[l]:0.###})"))} stayed candidate so that pruning can progress");
        }

        var reasons = excluded.ToDictionary(
            l => l,
            l => string.Create(CultureInfo.InvariantCulture,
                $"coefficient of variation {cv[l]:0.###} across {sets.Count} perturbation sets exceeds {_threshold:0.###}{note}"));
        return new CandidateFilterResult(kept, reasons);
    }

    /// <summary>Population standard deviation over absolute mean of a layer's scores across the sets.</summary>
    internal static double CoefficientOfVariation(IReadOnlyList<IReadOnlyList<double>> sets, int layer)
    {
        double mean = 0;
        foreach (IReadOnlyList<double> set in sets)
        {
            mean += set[layer];
        }

        mean /= sets.Count;
        double variance = 0;
        foreach (IReadOnlyList<double> set in sets)
        {
            double d = set[layer] - mean;
            variance += d * d;
        }

        double std = Math.Sqrt(variance / sets.Count);
        if (double.IsNaN(std) || double.IsNaN(mean))
        {
            return double.PositiveInfinity;
        }

        return mean == 0 ? (std == 0 ? 0 : double.PositiveInfinity) : std / Math.Abs(mean);
    }
}
