using Pip.Search;

namespace Pip.Tests.Search;

/// <summary>Synthetic objectives with known optima, and helpers to run searches on them.</summary>
internal static class SearchProblems
{
    public static readonly IReadOnlyDictionary<string, double> CalibrationPenalty = new Dictionary<string, double>
    {
        ["wikitext"] = 0.0,
        ["c4"] = 1.0,
        ["alpaca"] = 2.0,
        ["code"] = 3.0,
    };

    /// <summary>(x − 1.3)² + (y + 0.7)² + penalty(c), x, y ∈ [−5, 5]; optimum 0 at (1.3, −0.7, "wikitext").</summary>
    public static SearchSpace QuadraticSpace { get; } = new(
        SearchParameter.Float("x", -5, 5),
        SearchParameter.Float("y", -5, 5),
        SearchParameter.Categorical("calibration", "wikitext", "c4", "alpaca", "code"));

    public static double Quadratic(ParameterAssignment p)
    {
        double dx = p.GetDouble("x") - 1.3;
        double dy = p.GetDouble("y") + 0.7;
        return dx * dx + dy * dy + CalibrationPenalty[p.GetString("calibration")];
    }

    /// <summary>Three categorical parameters of five choices (125 combinations); additive, unique best 0 at (b, 3, "z").</summary>
    public static SearchSpace GridSpace { get; } = new(
        SearchParameter.Categorical("a", "a", "b", "c", "d", "e"),
        SearchParameter.Categorical("n", 1, 2, 3, 4, 5),
        SearchParameter.Categorical("s", "v", "w", "x", "y", "z"));

    public static double Grid(ParameterAssignment p)
    {
        double a = p.GetString("a") switch { "a" => 1.0, "b" => 0.0, "c" => 1.5, "d" => 2.0, _ => 3.0 };
        double n = Math.Abs(p.GetInt32("n") - 3);
        double s = p.GetString("s") switch { "v" => 2.5, "w" => 2.0, "x" => 1.2, "y" => 0.8, _ => 0.0 };
        return a + n + s;
    }

    public static async Task<SearchResult> RunAsync(ISearcher searcher, Func<ParameterAssignment, double> objective, int trials) =>
        await new SearchRunner(searcher, new SearchRunnerOptions { MaxTrials = trials })
            .RunAsync((p, _) => ValueTask.FromResult(objective(p)));

    /// <summary>
    /// Asks <paramref name="searcher"/> for trials until one's value is at most <paramref name="threshold"/>; returns
    /// how many trials that took (1-based), or <paramref name="budget"/> + 1 when none within the budget.
    /// </summary>
    public static int TrialsToReach(ISearcher searcher, Func<ParameterAssignment, double> objective, double threshold, int budget)
    {
        var history = new List<Trial>();
        while (history.Count < budget)
        {
            ParameterAssignment p = searcher.Suggest(history);
            double value = objective(p);
            history.Add(Trial.Completed(history.Count, p, value));
            if (value <= threshold)
            {
                return history.Count;
            }
        }

        return budget + 1;
    }

    public static double Median(IEnumerable<int> values)
    {
        int[] sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
    }
}
