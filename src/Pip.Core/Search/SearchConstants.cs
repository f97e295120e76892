namespace Pip.Search;

/// <summary>Defaults of the searchers and of the search runner.</summary>
public static class SearchConstants
{
    /// <summary>Default number of random trials before TPE models the history: 10 (Optuna's <c>n_startup_trials</c>).</summary>
    public const int DefaultStartupTrials = 10;

    /// <summary>Default number of candidates TPE draws from l(x) to pick the best l(x)/g(x) of: 24 (Optuna's <c>n_ei_candidates</c>).</summary>
    public const int DefaultCandidateCount = 24;

    /// <summary>Default weight of the prior in each Parzen estimator: 1 (Optuna's <c>prior_weight</c>).</summary>
    public const double DefaultPriorWeight = 1.0;

    /// <summary>Default number of trials of a search: 50.</summary>
    public const int DefaultMaxTrials = 50;

    /// <summary>Most good trials TPE's default split keeps: 25.</summary>
    public const int MaxGoodTrials = 25;

    /// <summary>
    /// Optuna's default split: the best ⌈0.1·n⌉ of the n completed trials, at most <see cref="MaxGoodTrials"/>, form
    /// l(x); the others form g(x).
    /// </summary>
    public static int DefaultGamma(int completedTrials) => Math.Min((int)Math.Ceiling(0.1 * completedTrials), MaxGoodTrials);
}
