using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Pip.Internal;

namespace Pip.Search;

/// <summary>Options of <see cref="SearchRunner"/>.</summary>
public sealed class SearchRunnerOptions
{
    /// <summary>
    /// Number of trials of the search, counting the previous trials a resumed search starts from. Default
    /// <see cref="SearchConstants.DefaultMaxTrials"/>.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxTrials { get; set; } = SearchConstants.DefaultMaxTrials;

    internal SearchRunnerOptions Clone() => (SearchRunnerOptions)MemberwiseClone();
}

/// <summary>Progress of a search, reported after each trial.</summary>
/// <param name="Trial">The trial just finished.</param>
/// <param name="TrialCount">Trials in the history so far (previous ones included).</param>
/// <param name="MaxTrials">Trials the search will have when done.</param>
/// <param name="Best">The best completed trial so far, or null when none completed.</param>
public sealed record SearchProgress(Trial Trial, int TrialCount, int MaxTrials, Trial? Best);

/// <summary>The outcome of a search.</summary>
public sealed class SearchResult
{
    /// <summary>The result of the given history.</summary>
    public SearchResult(IReadOnlyList<Trial> trials)
    {
        ArgumentNullException.ThrowIfNull(trials);
        Trials = trials.ToArray();
        Best = Trial.Best(Trials);
        BestSoFar = Trial.BestSoFar(Trials);
    }

    /// <summary>Every trial, in order (previous trials of a resumed search first).</summary>
    public IReadOnlyList<Trial> Trials { get; }

    /// <summary>The lowest-valued completed trial (the earliest of equals), or null when every trial failed.</summary>
    public Trial? Best { get; }

    /// <summary>For each trial, the lowest value of the completed trials up to it; NaN until the first completed trial.</summary>
    public IReadOnlyList<double> BestSoFar { get; }

    /// <summary>Number of failed trials.</summary>
    public int FailedCount => Trials.Count(t => t.Status == TrialStatus.Failed);
}

/// <summary>
/// Runs a search: asks the searcher for parameters, evaluates the objective on them (lower is better) and records
/// every trial, for <see cref="SearchRunnerOptions.MaxTrials"/> trials. A trial whose objective throws (other than by
/// the search's own cancellation) or returns NaN is recorded as failed, with the exception's type and message, and the
/// search goes on. Cancelling the token stops the search with an <see cref="OperationCanceledException"/>; the trials
/// finished until then have been reported through the progress callback.
/// </summary>
public sealed class SearchRunner
{
    private readonly ISearcher _searcher;
    private readonly SearchRunnerOptions _options;

    /// <summary>A runner that asks <paramref name="searcher"/> for parameters.</summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid.</exception>
    public SearchRunner(ISearcher searcher, SearchRunnerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(searcher);
        _searcher = searcher;
        _options = options?.Clone() ?? new SearchRunnerOptions();
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(_options, nameof(SearchRunnerOptions), errors);
        OptionsValidation.ThrowIfAny(errors, typeof(SearchRunnerOptions), nameof(SearchRunnerOptions));
    }

    /// <summary>Runs a new search of <see cref="SearchRunnerOptions.MaxTrials"/> trials.</summary>
    /// <param name="objective">The objective to minimise; it receives the parameters and the cancellation token.</param>
    /// <param name="progress">Told after each trial, or null.</param>
    /// <param name="cancellationToken">Stops the search (between trials, or inside the objective if it observes the token).</param>
    /// <exception cref="OperationCanceledException">The search was cancelled.</exception>
    public Task<SearchResult> RunAsync(
        Func<ParameterAssignment, CancellationToken, ValueTask<double>> objective,
        IProgress<SearchProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        RunAsync(objective, [], progress, cancellationToken);

    /// <summary>
    /// Resumes a search from <paramref name="previousTrials"/> (for example read back from JSON): the searcher sees
    /// them, and only the trials missing to <see cref="SearchRunnerOptions.MaxTrials"/> are run.
    /// </summary>
    /// <param name="objective">The objective to minimise; it receives the parameters and the cancellation token.</param>
    /// <param name="previousTrials">Trials of the search so far, in order.</param>
    /// <param name="progress">Told after each trial, or null.</param>
    /// <param name="cancellationToken">Stops the search (between trials, or inside the objective if it observes the token).</param>
    /// <exception cref="ArgumentException">A previous trial is null.</exception>
    /// <exception cref="OperationCanceledException">The search was cancelled.</exception>
    public async Task<SearchResult> RunAsync(
        Func<ParameterAssignment, CancellationToken, ValueTask<double>> objective,
        IReadOnlyList<Trial> previousTrials,
        IProgress<SearchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(previousTrials);
        if (previousTrials.Any(t => t is null))
        {
            throw new ArgumentException("The previous trials contain a null trial.", nameof(previousTrials));
        }

        var history = new List<Trial>(previousTrials);
        Trial? best = Trial.Best(history);
        while (history.Count < _options.MaxTrials)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ParameterAssignment parameters = _searcher.Suggest(history);
            Trial trial = await EvaluateAsync(objective, history.Count, parameters, cancellationToken).ConfigureAwait(false);
            history.Add(trial);
            if (trial.HasValue && (best is null || trial.Value!.Value < best.Value!.Value))
            {
                best = trial;
            }

            progress?.Report(new SearchProgress(trial, history.Count, _options.MaxTrials, best));
        }

        return new SearchResult(history);
    }

    private static async Task<Trial> EvaluateAsync(
        Func<ParameterAssignment, CancellationToken, ValueTask<double>> objective,
        int number,
        ParameterAssignment parameters,
        CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            double value = await objective(parameters, cancellationToken).ConfigureAwait(false);
            TimeSpan duration = Stopwatch.GetElapsedTime(start);
            return double.IsNaN(value)
                ? Trial.Failed(number, parameters, "The objective returned NaN.", duration)
                : Trial.Completed(number, parameters, value, duration);
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            return Trial.Failed(number, parameters, $"{e.GetType().Name}: {e.Message}", Stopwatch.GetElapsedTime(start));
        }
    }
}
