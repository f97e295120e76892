using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Internal;

namespace Pip.Search;

/// <summary>Which searcher an AdaPruner search uses.</summary>
public enum AdaPrunerSearcherKind
{
    /// <summary>Multivariate TPE (<see cref="TpeSearcher"/>), AdaPruner's Bayesian optimisation.</summary>
    Tpe,

    /// <summary>Uniform random draws (<see cref="RandomSearcher"/>), the baseline.</summary>
    Random,
}

/// <summary>Options of <see cref="AdaPrunerSearch"/>.</summary>
/// <remarks>Mutable until given to <see cref="AdaPrunerSearch"/>, which keeps a copy.</remarks>
public sealed class AdaPrunerSearchOptions
{
    /// <summary>Default budget: 30 trials.</summary>
    public const int DefaultMaxTrials = 30;

    /// <summary>Number of trials (repeated configurations count: they are looked up, not evaluated again). Default <see cref="DefaultMaxTrials"/>.</summary>
    [Range(1, 1_000_000)]
    public int MaxTrials { get; set; } = DefaultMaxTrials;

    /// <summary>The searcher. Default <see cref="AdaPrunerSearcherKind.Tpe"/>.</summary>
    public AdaPrunerSearcherKind Searcher { get; set; } = AdaPrunerSearcherKind.Tpe;

    /// <summary>The searcher's seed. Default 42.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>
    /// TPE: random trials before the model of the history is used, or null for min(10, ⌈<see cref="MaxTrials"/>/3⌉)
    /// (Optuna's 10, fewer for small budgets). The startup draws are those of a random searcher with the same seed.
    /// </summary>
    [Range(0, 1_000_000)]
    public int? StartupTrials { get; set; }

    /// <summary>The number of startup trials in use.</summary>
    public int EffectiveStartupTrials => StartupTrials ?? Math.Min(SearchConstants.DefaultStartupTrials, Math.Max(1, (MaxTrials + 2) / 3));

    internal AdaPrunerSearchOptions Clone() => (AdaPrunerSearchOptions)MemberwiseClone();
}

/// <summary>One trial of an AdaPruner search.</summary>
public sealed record AdaPrunerTrial
{
    /// <summary>Position in the search, from 0.</summary>
    public required int Number { get; init; }

    /// <summary>The parameters the searcher proposed.</summary>
    public required ParameterAssignment Parameters { get; init; }

    /// <summary>The configuration they stand for.</summary>
    public AdaPrunerConfiguration? Configuration { get; init; }

    /// <summary>The configuration's key (<see cref="AdaPrunerConfiguration.Key"/>).</summary>
    public string? Key { get; init; }

    /// <summary>How the trial ended.</summary>
    public required TrialStatus Status { get; init; }

    /// <summary>The objective (validation perplexity) when completed.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public double? Objective { get; init; }

    /// <summary>Why the trial failed, or null.</summary>
    public string? Error { get; init; }

    /// <summary>Whether the evaluation was looked up (the key was evaluated before) rather than run.</summary>
    public bool Cached { get; init; }

    /// <summary>The evaluation (for a cached trial, the earlier one), or null when the trial failed.</summary>
    public AdaPrunerEvaluation? Evaluation { get; init; }

    /// <summary>The fraction of parameters the configuration removed, or null when the trial failed.</summary>
    public double? RemovedParameterRatio => Evaluation?.RemovedParameterRatio;

    /// <summary>Seconds this trial took (about 0 for a cached one).</summary>
    public double Seconds { get; init; }

    /// <summary>The lowest objective of the completed trials up to this one, or null before the first.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public double? BestSoFar { get; init; }
}

/// <summary>Progress of an AdaPruner search, reported after each trial.</summary>
/// <param name="Trial">The trial just finished.</param>
/// <param name="TrialCount">Trials so far.</param>
/// <param name="MaxTrials">Trials of the whole search.</param>
/// <param name="Best">The best completed trial so far, or null.</param>
public sealed record AdaPrunerProgress(AdaPrunerTrial Trial, int TrialCount, int MaxTrials, AdaPrunerTrial? Best);

/// <summary>The report of an AdaPruner search: the space, the searcher, every trial and the best configuration. Written as JSON by <see cref="WriteAsync"/>.</summary>
public sealed record AdaPrunerReport
{
    /// <summary>Version of the format: 1.</summary>
    public int FormatVersion { get; init; } = 1;

    /// <summary>What was pruned.</summary>
    public required AdaPrunerMode Mode { get; init; }

    /// <summary>The searcher: <c>tpe</c> or <c>random</c>.</summary>
    public required AdaPrunerSearcherKind Searcher { get; init; }

    /// <summary>The searcher's seed.</summary>
    public required int Seed { get; init; }

    /// <summary>The budget in trials.</summary>
    public required int MaxTrials { get; init; }

    /// <summary>TPE's random startup trials (0 for random search).</summary>
    public required int StartupTrials { get; init; }

    /// <summary>The search space.</summary>
    public required SearchSpace Space { get; init; }

    /// <summary>Number of points of the grid.</summary>
    public required long GridSize { get; init; }

    /// <summary>Settings of the objective (target ratio, validation text, recovery, ...), as the caller describes them.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The objective of the unpruned model, when measured.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public double? DenseObjective { get; init; }

    /// <summary>Every trial, in order.</summary>
    public required IReadOnlyList<AdaPrunerTrial> Trials { get; init; }

    /// <summary>The best completed trial (the earliest of equals), or null when every trial failed.</summary>
    public AdaPrunerTrial? Best { get; init; }

    /// <summary>Number of trials whose objective was run (not looked up).</summary>
    public int Evaluations { get; init; }

    /// <summary>Number of trials answered from the cache.</summary>
    public int CachedTrials { get; init; }

    /// <summary>Number of failed trials.</summary>
    public int FailedTrials { get; init; }

    /// <summary>Seconds of the whole search.</summary>
    public double Seconds { get; init; }

    /// <summary>The best-so-far curve: per trial, the lowest objective up to it (NaN before the first completed trial).</summary>
    [JsonIgnore]
    public IReadOnlyList<double> BestSoFar => [.. Trials.Select(t => t.BestSoFar ?? double.NaN)];

    /// <summary>The number of trials until the best-so-far objective first reaches <paramref name="objective"/> (within <paramref name="tolerance"/>), or null when it never does.</summary>
    /// <param name="objective">The objective to reach (for example the best of the grid).</param>
    /// <param name="tolerance">Absolute tolerance.</param>
    public int? TrialsToReach(double objective, double tolerance = 0)
    {
        for (int i = 0; i < Trials.Count; i++)
        {
            if (Trials[i].BestSoFar is { } best && best <= objective + tolerance)
            {
                return i + 1;
            }
        }

        return null;
    }

    /// <summary>
    /// The number of distinct evaluations (trials that were not answered from the cache: the ones that cost a pruning
    /// and a measurement) until the best-so-far objective first reaches <paramref name="objective"/> (within
    /// <paramref name="tolerance"/>), or null when it never does.
    /// </summary>
    /// <param name="objective">The objective to reach (for example the best of the grid).</param>
    /// <param name="tolerance">Absolute tolerance.</param>
    public int? EvaluationsToReach(double objective, double tolerance = 0)
    {
        int evaluations = 0;
        foreach (var trial in Trials)
        {
            if (!trial.Cached) evaluations++;
            if (trial.BestSoFar is { } best && best <= objective + tolerance) return evaluations;
        }

        return null;
    }

    /// <summary>Writes the report as JSON (snake_case), atomically.</summary>
    /// <param name="path">The file; its folder is created if needed; an existing file is replaced.</param>
    /// <param name="cancellationToken">Cancels the write (the file is then left as it was).</param>
    public Task WriteAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return AdaPrunerJson.WriteAtomicallyAsync(this, path, cancellationToken);
    }

    /// <summary>Reads a report written by <see cref="WriteAsync"/>.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an AdaPruner report (the message names it).</exception>
    public static AdaPrunerReport Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"AdaPruner report '{path}' does not exist.", path);
        }

        try
        {
            return JsonSerializer.Deserialize<AdaPrunerReport>(File.ReadAllText(path), AdaPrunerJson.Options)
                ?? throw new InvalidDataException($"AdaPruner report '{path}' is JSON null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not an AdaPruner report: {e.Message}", e);
        }
    }
}

/// <summary>
/// AdaPruner's search (Kong et al., AAAI 2025): a searcher (TPE, or random search as the baseline) proposes points of
/// the solution space (calibration data × importance metric), the objective prunes a fresh copy of the model with
/// each and measures its validation perplexity, for a budget of trials. Repeated configurations (and equivalent ones,
/// see <see cref="AdaPrunerConfiguration.Key"/>) are looked up in an <see cref="AdaPrunerCache"/> instead of being
/// pruned again. Every trial goes into the <see cref="AdaPrunerReport"/>; applying the best configuration is the
/// backend's job (Pip.Torch's <c>TorchAdaPrunerObjective.PruneAsync</c>).
/// </summary>
public sealed partial class AdaPrunerSearch
{
    private readonly AdaPrunerSearchOptions _options;
    private readonly ILogger _logger;

    /// <summary>A search of <paramref name="space"/>.</summary>
    /// <param name="space">The solution space.</param>
    /// <param name="options">The budget, searcher and seed, or null for the defaults.</param>
    /// <param name="logger">Logs each trial, or null.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid.</exception>
    public AdaPrunerSearch(AdaPrunerSpace space, AdaPrunerSearchOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(space);
        _options = options?.Clone() ?? new AdaPrunerSearchOptions();
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(_options, nameof(AdaPrunerSearchOptions), errors);
        if (!Enum.IsDefined(_options.Searcher))
        {
            errors.Add($"{nameof(AdaPrunerSearchOptions)}.{nameof(AdaPrunerSearchOptions.Searcher)}: {(int)_options.Searcher} is not tpe or random.");
        }

        OptionsValidation.ThrowIfAny(errors, typeof(AdaPrunerSearchOptions), nameof(AdaPrunerSearchOptions));
        Space = space;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The solution space.</summary>
    public AdaPrunerSpace Space { get; }

    /// <summary>The searcher of these options (a new one; searchers keep no state).</summary>
    public ISearcher CreateSearcher() => _options.Searcher == AdaPrunerSearcherKind.Random
        ? new RandomSearcher(Space.Space, new RandomSearcherOptions { Seed = _options.Seed })
        : new TpeSearcher(Space.Space, new TpeSearcherOptions { Seed = _options.Seed, StartupTrials = _options.EffectiveStartupTrials });

    /// <summary>Runs the search.</summary>
    /// <param name="objective">Prunes and measures one configuration.</param>
    /// <param name="cache">Evaluations already known (kept up to date by the search), or null for a new, empty one.</param>
    /// <param name="progress">Told after each trial, synchronously, or null.</param>
    /// <param name="cancellationToken">Stops the search (between trials, or inside the objective).</param>
    /// <returns>The report (its <see cref="AdaPrunerReport.Settings"/> and <see cref="AdaPrunerReport.DenseObjective"/> are for the caller to fill in with <c>with</c>).</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public async Task<AdaPrunerReport> RunAsync(
        IAdaPrunerObjective objective,
        AdaPrunerCache? cache = null,
        IProgress<AdaPrunerProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(objective);
        cache ??= new AdaPrunerCache();
        var runner = new SearchRunner(CreateSearcher(), new SearchRunnerOptions { MaxTrials = _options.MaxTrials });
        var trials = new List<AdaPrunerTrial>();
        AdaPrunerTrial? best = null;
        AdaPrunerConfiguration? configuration = null;
        AdaPrunerEvaluation? evaluation = null;
        bool cached = false;
        var clock = Stopwatch.StartNew();

        async ValueTask<double> Evaluate(ParameterAssignment parameters, CancellationToken token)
        {
            (configuration, evaluation, cached) = (null, null, false);
            configuration = Space.Decode(parameters);
            Log.TrialStarting(_logger, trials.Count, _options.MaxTrials, configuration.Key);
            (evaluation, cached) = await cache.GetOrEvaluateAsync(configuration, objective, token).ConfigureAwait(false);
            return evaluation.Objective;
        }

        var sink = new SynchronousProgress<SearchProgress>(p =>
        {
            Trial trial = p.Trial;
            double? bestSoFar = trial.HasValue && (best?.Objective is not { } b || trial.Value!.Value < b) ? trial.Value : best?.Objective;
            var record = new AdaPrunerTrial
            {
                Number = trial.Number,
                Parameters = trial.Parameters,
                Configuration = configuration,
                Key = configuration?.Key,
                Status = trial.Status,
                Objective = trial.HasValue ? trial.Value : null,
                Error = trial.Error,
                Cached = cached,
                Evaluation = trial.HasValue ? evaluation : null,
                Seconds = trial.Duration.TotalSeconds,
                BestSoFar = bestSoFar,
            };
            trials.Add(record);
            if (record.Objective is { } value && (best?.Objective is not { } current || value < current))
            {
                best = record;
            }

            if (record.Status == TrialStatus.Failed)
            {
                Log.TrialFailed(_logger, record.Number, record.Key ?? record.Parameters.ToString(), record.Error ?? "");
            }
            else
            {
                Log.TrialCompleted(_logger, record.Number, record.Objective ?? double.NaN, cached, record.RemovedParameterRatio ?? double.NaN, record.Seconds, best?.Objective ?? double.NaN);
            }

            progress?.Report(new AdaPrunerProgress(record, trials.Count, _options.MaxTrials, best));
        });

        await runner.RunAsync(Evaluate, sink, cancellationToken).ConfigureAwait(false);
        return new AdaPrunerReport
        {
            Mode = Space.Mode,
            Searcher = _options.Searcher,
            Seed = _options.Seed,
            MaxTrials = _options.MaxTrials,
            StartupTrials = _options.Searcher == AdaPrunerSearcherKind.Tpe ? _options.EffectiveStartupTrials : 0,
            Space = Space.Space,
            GridSize = Space.GridSize,
            Trials = trials,
            Best = best,
            Evaluations = trials.Count(t => !t.Cached),
            CachedTrials = trials.Count(t => t.Cached),
            FailedTrials = trials.Count(t => t.Status == TrialStatus.Failed),
            Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "AdaPruner trial {Number}/{MaxTrials}: {Configuration}.")]
        public static partial void TrialStarting(ILogger logger, int number, int maxTrials, string configuration);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "AdaPruner trial {Number}: objective {Objective:G6} (cached: {Cached}), {Removed:P2} of the parameters removed, {Seconds:F1} s; best so far {Best:G6}.")]
        public static partial void TrialCompleted(ILogger logger, int number, double objective, bool cached, double removed, double seconds, double best);

        [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "AdaPruner trial {Number} ({Configuration}) failed: {Error}")]
        public static partial void TrialFailed(ILogger logger, int number, string configuration, string error);
    }
}
