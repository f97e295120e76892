using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip.Search;

/// <summary>Options of <see cref="TpeSearcher"/>; the defaults are Optuna's.</summary>
public sealed class TpeSearcherOptions : IPipOptionsCheck
{
    /// <summary>Seed of the draws, or null for a random one (then see <see cref="TpeSearcher.Seed"/>).</summary>
    public int? Seed { get; set; }

    /// <summary>
    /// Number of completed trials drawn at random before TPE models the history (the draws are those of a
    /// <see cref="RandomSearcher"/> with the same seed). Default <see cref="SearchConstants.DefaultStartupTrials"/>.
    /// </summary>
    [Range(0, 1_000_000)]
    public int StartupTrials { get; set; } = SearchConstants.DefaultStartupTrials;

    /// <summary>Number of candidates drawn from l(x); the one with the largest l(x)/g(x) is suggested. Default <see cref="SearchConstants.DefaultCandidateCount"/>.</summary>
    [Range(1, 100_000)]
    public int CandidateCount { get; set; } = SearchConstants.DefaultCandidateCount;

    /// <summary>Weight of the prior kernel (uniform-ish over the range or the choices) in each Parzen estimator; 0 leaves it out once there are observations. Default <see cref="SearchConstants.DefaultPriorWeight"/>.</summary>
    [Range(0.0, 1e9)]
    public double PriorWeight { get; set; } = SearchConstants.DefaultPriorWeight;

    /// <summary>Whether Gaussian kernels are at least range / min(100, 1 + kernels) wide (Optuna's "magic clip"); else at least 1e-12. Default true.</summary>
    public bool MagicClip { get; set; } = true;

    /// <summary>Whether the widths of the outermost kernels also consider their distance to the bounds. Default false (Optuna's default).</summary>
    public bool ConsiderEndpoints { get; set; }

    /// <summary>
    /// Whether one joint estimator models all parameters (multivariate TPE, Falkner et al. 2018: each kernel is the
    /// product of the per-parameter kernels of one trial, so choices that worked together are drawn together) instead
    /// of one estimator per parameter (the independent TPE of Bergstra et al. 2011). Default true, as in Optuna 5 for
    /// single-objective searches; it finds the optimum of mixed and categorical spaces in markedly fewer trials.
    /// </summary>
    public bool Multivariate { get; set; } = true;

    /// <summary>
    /// Number of good trials (forming l(x)) among n completed ones, clamped to [0, n]; null for
    /// <see cref="SearchConstants.DefaultGamma"/>, min(⌈0.1·n⌉, 25).
    /// </summary>
    public Func<int, int>? Gamma { get; set; }

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (!double.IsFinite(PriorWeight))
        {
            errors.Add($"{path}.{nameof(PriorWeight)}: {PriorWeight} is not a finite number.");
        }
    }

    internal TpeSearcherOptions Clone() => (TpeSearcherOptions)MemberwiseClone();
}

/// <summary>
/// Tree-structured Parzen estimator search (Bergstra et al. 2011, with Optuna's defaults). After
/// <see cref="TpeSearcherOptions.StartupTrials"/> random trials, the completed trials are split into the best
/// γ(n) and the rest; a Parzen estimator l(x) is fitted to the good ones and g(x) to the others (per parameter, or
/// jointly when <see cref="TpeSearcherOptions.Multivariate"/>), <see cref="TpeSearcherOptions.CandidateCount"/>
/// candidates are drawn from l(x), and the one maximising l(x)/g(x) is suggested. Failed trials and trials whose
/// parameters do not fit the space are ignored. The suggestion depends only on the seed and the history.
/// </summary>
public sealed class TpeSearcher : ISearcher
{
    private readonly TpeSearcherOptions _options;

    /// <summary>A TPE searcher over <paramref name="space"/>.</summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem is listed).</exception>
    public TpeSearcher(SearchSpace space, TpeSearcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(space);
        _options = options?.Clone() ?? new TpeSearcherOptions();
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(_options, nameof(TpeSearcherOptions), errors);
        OptionsValidation.ThrowIfAny(errors, typeof(TpeSearcherOptions), nameof(TpeSearcherOptions));
        Space = space;
        Seed = _options.Seed ?? Random.Shared.Next();
    }

    /// <inheritdoc/>
    public SearchSpace Space { get; }

    /// <summary>The seed in use (the given one, or the one drawn when none was given).</summary>
    public int Seed { get; }

    /// <inheritdoc/>
    public ParameterAssignment Suggest(IReadOnlyList<Trial> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        Random random = RandomSearcher.SuggestionRandom(Seed, history.Count);

        // Completed trials that fit the space, in history order.
        var usable = new List<Trial>();
        foreach (Trial trial in history)
        {
            if (trial is not null && trial.HasValue && Space.Contains(trial.Parameters))
            {
                usable.Add(trial);
            }
        }

        if (usable.Count < _options.StartupTrials)
        {
            return Space.FromInternal(RandomSearcher.SampleUniform(Space, random));
        }

        (List<double[]> below, List<double[]> above) = Split(usable);
        IReadOnlyList<SearchParameter> parameters = Space.Parameters;
        var values = new double[parameters.Count];
        var modelled = new List<int>();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (parameters[i].IsSingle)
            {
                values[i] = parameters[i].SampleUniform(random);
            }
            else
            {
                modelled.Add(i);
            }
        }

        if (_options.Multivariate)
        {
            if (modelled.Count > 0)
            {
                double[] best = SampleBest(modelled, below, above, random);
                for (int j = 0; j < modelled.Count; j++)
                {
                    values[modelled[j]] = best[j];
                }
            }
        }
        else
        {
            foreach (int i in modelled)
            {
                values[i] = SampleBest([i], below, above, random)[0];
            }
        }

        return Space.FromInternal(values);
    }

    /// <summary>The good and the bad trials' internal values (each oldest first): the best γ(n) by value (earlier first among equals), then the rest.</summary>
    private (List<double[]> Below, List<double[]> Above) Split(List<Trial> usable)
    {
        int n = usable.Count;
        int nBelow = Math.Clamp((_options.Gamma ?? SearchConstants.DefaultGamma)(n), 0, n);
        int[] byValue = Enumerable.Range(0, n).OrderBy(i => usable[i].Value!.Value).ThenBy(i => i).ToArray();
        var isBelow = new bool[n];
        for (int r = 0; r < nBelow; r++)
        {
            isBelow[byValue[r]] = true;
        }

        var below = new List<double[]>(nBelow);
        var above = new List<double[]>(n - nBelow);
        for (int i = 0; i < n; i++)
        {
            (isBelow[i] ? below : above).Add(ToInternal(usable[i].Parameters));
        }

        return (below, above);
    }

    private double[] ToInternal(ParameterAssignment assignment)
    {
        IReadOnlyList<SearchParameter> parameters = Space.Parameters;
        var values = new double[parameters.Count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = parameters[i].ToInternal(assignment[parameters[i].Name]);
        }

        return values;
    }

    /// <summary>Draws the candidates for parameters <paramref name="indices"/> from l(x) and returns the one with the largest log l(x) − log g(x).</summary>
    private double[] SampleBest(IReadOnlyList<int> indices, List<double[]> below, List<double[]> above, Random random)
    {
        SearchParameter[] parameters = indices.Select(i => Space.Parameters[i]).ToArray();
        ParzenEstimator good = Estimator(parameters, indices, below);
        ParzenEstimator bad = Estimator(parameters, indices, above);
        double[]? best = null;
        double bestScore = double.NegativeInfinity;
        for (int c = 0; c < _options.CandidateCount; c++)
        {
            double[] candidate = good.Sample(random);
            double score = good.LogPdf(candidate) - bad.LogPdf(candidate);
            if (best is null || score > bestScore)
            {
                best = candidate;
                bestScore = double.IsNaN(score) ? double.NegativeInfinity : score;
            }
        }

        return best!;
    }

    private ParzenEstimator Estimator(SearchParameter[] parameters, IReadOnlyList<int> indices, List<double[]> rows) =>
        new(parameters, rows.Select(row => indices.Select(i => row[i]).ToArray()).ToList(), _options.PriorWeight, _options.MagicClip, _options.ConsiderEndpoints);
}
