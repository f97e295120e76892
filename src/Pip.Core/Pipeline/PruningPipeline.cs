using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Internal;

namespace Pip;

/// <summary>Runs a pruning: perturb, score, filter, decide, remove, repeat; and records everything in a <see cref="PruningReport"/>.</summary>
/// <remarks>
/// <para>Each round makes <see cref="PipelineOptions.PerturbationSets"/> perturbation sets (only when the metric uses
/// perturbations; seeds derive from the run's seed, the round, the set and the sample), scores the current layers,
/// runs the filters in order, lets the strategy decide, removes the chosen layers and records the round. The run stops
/// when the target is reached, the strategy stops, no candidate is left, or one layer is left.</para>
/// <para>Cancellation is checked between rounds and inside them (between twins, inside the metric, and just before the
/// model is changed); a run cancelled before any removal leaves the model as it was.</para>
/// <para>Built by <see cref="PipelineBuilder"/>; immutable and reusable, but one run at a time per model.</para>
/// </remarks>
public sealed class PruningPipeline
{
    private readonly PipelineOptions _options;
    private readonly PerturberFactory? _perturberFactory;
    private readonly ILogger _logger;

    internal PruningPipeline(
        PipelineOptions options,
        PruningSettings settings,
        IImportanceMetric metric,
        IPruningStrategy strategy,
        IReadOnlyList<ICandidateFilter> filters,
        PerturberFactory? perturberFactory,
        ILogger logger)
    {
        _options = options;
        Settings = settings;
        Metric = metric;
        Strategy = strategy;
        Filters = filters;
        _perturberFactory = perturberFactory;
        _logger = logger;
    }

    /// <summary>The settings every run of this pipeline records.</summary>
    public PruningSettings Settings { get; }

    /// <summary>The importance metric.</summary>
    public IImportanceMetric Metric { get; }

    /// <summary>The strategy.</summary>
    public IPruningStrategy Strategy { get; }

    /// <summary>The candidate filters, in the order they run.</summary>
    public IReadOnlyList<ICandidateFilter> Filters { get; }

    /// <summary>Prunes <paramref name="model"/> in place with samples loaded from <see cref="PipelineOptions.Calibration"/>.</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="progress">Receives progress (synchronously, on the run's thread), or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <exception cref="InvalidOperationException">No calibration file is set in the options.</exception>
    public Task<PruningReport> RunAsync(IPrunableModel model, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_options.Calibration?.FilePath is null)
        {
            throw new InvalidOperationException("No calibration samples: pass them to RunAsync or set PipelineOptions.Calibration.FilePath.");
        }

        CalibrationSet calibration = CalibrationSet.Load(_options.Calibration, cancellationToken);
        return RunCoreAsync(model, calibration.Samples, calibration.SourcePath, progress, cancellationToken);
    }

    /// <summary>Prunes <paramref name="model"/> in place with a calibration set (its source file, if any, can feed the perturber's lexicon).</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="calibration">The calibration set.</param>
    /// <param name="progress">Receives progress, or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public Task<PruningReport> RunAsync(IPrunableModel model, CalibrationSet calibration, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibration);
        return RunCoreAsync(model, calibration.Samples, calibration.SourcePath, progress, cancellationToken);
    }

    /// <summary>Prunes <paramref name="model"/> in place with the given samples.</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="samples">The calibration samples (at least one).</param>
    /// <param name="progress">Receives progress, or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The report of the run.</returns>
    /// <exception cref="ArgumentException">No samples, or a layer-count target the model cannot meet.</exception>
    /// <exception cref="InvalidOperationException">A component broke its contract (wrong number of scores, a non-candidate removed, ...).</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled.</exception>
    public Task<PruningReport> RunAsync(IPrunableModel model, IReadOnlyList<CalibrationSample> samples, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(samples);
        return RunCoreAsync(model, samples, null, progress, cancellationToken);
    }

    private async Task<PruningReport> RunCoreAsync(
        IPrunableModel model,
        IReadOnlyList<CalibrationSample> samples,
        string? corpusPath,
        IProgress<PruningProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (samples.Count == 0)
        {
            throw new ArgumentException("No calibration samples: a run needs at least one.", nameof(samples));
        }

        if (samples.Any(s => s is null))
        {
            throw new ArgumentException("A calibration sample is null.", nameof(samples));
        }

        PruningTarget target = _options.Target;
        if (target.Layers is { } wanted && wanted >= model.LayerCount)
        {
            throw new ArgumentException($"Cannot remove {wanted} layers from a model of {model.LayerCount}: at most {model.LayerCount - 1} (one layer always stays).", nameof(model));
        }

        cancellationToken.ThrowIfCancellationRequested();
        DateTimeOffset startedAt = DateTimeOffset.UtcNow;
        var runWatch = Stopwatch.StartNew();
        long originalParameters = model.ParameterCount;
        int originalLayers = model.LayerCount;
        PipelineLog.RunStarting(_logger, model.Architecture, originalLayers, originalParameters, Metric.Name, Strategy.Name, target.ToString(), _options.Seed);

        bool recordTokens = _options.RecordTokenIds;
        List<SampleRecord> sampleRecords = [.. samples.Select(s => new SampleRecord(s.Index, s.Text, recordTokens ? [.. model.Tokenize(s.Text)] : null))];
        IPerturber? perturber = Metric.UsesPerturbations ? _perturberFactory?.Invoke(new PerturberContext(samples, corpusPath), cancellationToken) : null;
        if (Metric.UsesPerturbations && perturber is null)
        {
            throw new InvalidOperationException($"The metric '{Metric.Name}' uses perturbations but the pipeline has no perturber.");
        }

        var rounds = new List<PruningRound>();
        var removedOriginal = new List<int>();
        long removedParameters = 0;
        int removedLayers = 0;
        PruningStopReason stop;
        for (int round = 0; ; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (TargetPlanner.IsReached(model, target, originalParameters, removedParameters, removedLayers))
            {
                stop = PruningStopReason.TargetReached;
                break;
            }

            if (model.LayerCount <= 1)
            {
                stop = PruningStopReason.SingleLayerLeft;
                break;
            }

            var roundWatch = Stopwatch.StartNew();
            int layersBefore = model.LayerCount;
            long parametersBefore = model.ParameterCount;
            int[] originalIndices = [.. model.OriginalLayerIndices];

            // Perturbation sets.
            var sets = new List<IReadOnlyList<PerturbedSample>>();
            var twinRecords = new List<IReadOnlyList<TwinRecord>>();
            if (perturber is not null)
            {
                int setCount = _options.PerturbationSets;
                int total = setCount * samples.Count;
                for (int set = 0; set < setCount; set++)
                {
                    var twins = new List<PerturbedSample>(samples.Count);
                    var records = new List<TwinRecord>(samples.Count);
                    foreach (CalibrationSample sample in samples)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        int seed = Seeds.Derive(_options.Seed, Seeds.PerturbationTag, round, set, sample.Index);
                        PerturbedSample twin = await perturber.PerturbAsync(sample, seed, cancellationToken).ConfigureAwait(false);
                        if (twin.Edits.Count == 0)
                        {
                            PipelineLog.NoEdit(_logger, round, set, sample.Index);
                        }

                        twins.Add(twin);
                        records.Add(new TwinRecord(sample.Index, seed, twin.Text, [.. twin.Edits], recordTokens ? [.. model.Tokenize(twin.Text)] : null));
                        progress?.Report(new PruningProgress(round, PruningStage.Perturbing, set * samples.Count + twins.Count, total, layersBefore, parametersBefore));
                    }

                    sets.Add(twins);
                    twinRecords.Add(records);
                }

                PipelineLog.Perturbed(_logger, round, setCount, samples.Count, roundWatch.Elapsed.TotalSeconds);
            }

            double perturbationSeconds = roundWatch.Elapsed.TotalSeconds;

            // Scores.
            cancellationToken.ThrowIfCancellationRequested();
            IProgress<ScoringProgress>? scoringProgress = progress is null ? null : new ScoringProgressAdapter(progress, round, layersBefore, parametersBefore);
            var request = new ImportanceRequest(model, samples, sets, round, Seeds.Derive(_options.Seed, Seeds.MetricTag, round), scoringProgress);
            LayerScores scores = await Metric.ScoreAsync(request, cancellationToken).ConfigureAwait(false);
            CheckScores(scores, layersBefore);
            double scoringSeconds = roundWatch.Elapsed.TotalSeconds - perturbationSeconds;
            PipelineLog.Scored(_logger, round, layersBefore, Metric.Name, scoringSeconds);

            // Filters.
            IReadOnlyList<int> candidates = [.. Enumerable.Range(0, layersBefore)];
            var exclusions = new List<LayerExclusion>();
            foreach (ICandidateFilter filter in Filters)
            {
                CandidateFilterResult result = filter.Filter(model, scores, candidates);
                CheckFilterResult(filter, result, candidates);
                foreach ((int layer, string reason) in result.Excluded.OrderBy(e => e.Key))
                {
                    exclusions.Add(new LayerExclusion(layer, originalIndices[layer], filter.Name, reason));
                    PipelineLog.Excluded(_logger, round, layer, originalIndices[layer], filter.Name, reason);
                }

                candidates = [.. result.Kept];
            }

            PruningRound Record(IReadOnlyList<LayerRemoval> removed) => new()
            {
                Round = round,
                LayerCountBefore = layersBefore,
                LayerCountAfter = model.LayerCount,
                ParameterCountBefore = parametersBefore,
                ParameterCountAfter = model.ParameterCount,
                OriginalLayerIndices = originalIndices,
                Scores = [.. scores.Scores],
                PerPerturbationSetScores = scores.PerPerturbationSet?.Select(s => (IReadOnlyList<double>)[.. s]).ToList(),
                PerturbationSets = twinRecords,
                Excluded = exclusions,
                Candidates = candidates,
                Removed = removed,
                PerturbationSeconds = perturbationSeconds,
                ScoringSeconds = scoringSeconds,
                WallSeconds = roundWatch.Elapsed.TotalSeconds,
            };

            if (candidates.Count == 0)
            {
                PipelineLog.NoCandidates(_logger, round);
                PruningRound empty = Record([]);
                rounds.Add(empty);
                progress?.Report(new PruningProgress(round, PruningStage.RoundCompleted, 1, 1, model.LayerCount, model.ParameterCount, empty));
                stop = PruningStopReason.NoCandidates;
                break;
            }

            // Decision and removal.
            var state = new PruningState(model, originalParameters, removedParameters, removedLayers, target, scores, candidates, round);
            PruningDecision decision = Strategy.Decide(state);
            CheckDecision(decision, candidates, layersBefore);
            List<LayerRemoval> removals = [.. decision.LayersToRemove.Select(l => new LayerRemoval(l, originalIndices[l], scores.Scores[l], model.GetLayerParameterCount(l)))];

            cancellationToken.ThrowIfCancellationRequested();
            if (removals.Count > 0)
            {
                progress?.Report(new PruningProgress(round, PruningStage.Removing, 0, removals.Count, layersBefore, parametersBefore));
                model.RemoveLayers([.. decision.LayersToRemove]);
                foreach (LayerRemoval removal in removals)
                {
                    PipelineLog.Removed(_logger, round, removal.Layer, removal.OriginalLayer, removal.Score, removal.ParameterCount);
                }
            }

            removedParameters += removals.Sum(r => r.ParameterCount);
            removedLayers += removals.Count;
            removedOriginal.AddRange(removals.Select(r => r.OriginalLayer));
            PruningRound completed = Record(removals);
            rounds.Add(completed);
            progress?.Report(new PruningProgress(round, PruningStage.RoundCompleted, 1, 1, model.LayerCount, model.ParameterCount, completed));

            if (removals.Count == 0)
            {
                stop = decision.Continue ? PruningStopReason.NothingRemoved : PruningStopReason.StrategyStopped;
                break;
            }

            if (!decision.Continue)
            {
                stop = PruningStopReason.StrategyStopped;
                break;
            }
        }

        bool reached = TargetPlanner.IsReached(model, target, originalParameters, removedParameters, removedLayers);
        if (reached)
        {
            stop = PruningStopReason.TargetReached;
        }

        var report = new PruningReport
        {
            Architecture = model.Architecture,
            Settings = Settings,
            StartedAt = startedAt,
            OriginalLayerCount = originalLayers,
            OriginalParameterCount = originalParameters,
            FinalLayerCount = model.LayerCount,
            FinalParameterCount = model.ParameterCount,
            RemovedOriginalLayers = removedOriginal,
            RemainingOriginalLayers = [.. model.OriginalLayerIndices],
            Samples = sampleRecords,
            Rounds = rounds,
            StopReason = stop,
            TargetReached = reached,
            WallSeconds = runWatch.Elapsed.TotalSeconds,
        };
        PipelineLog.Completed(_logger, rounds.Count, removedLayers, report.RemovedParameterRatio, stop);
        return report;
    }

    private void CheckScores(LayerScores scores, int layers)
    {
        if (scores?.Scores is null)
        {
            throw new InvalidOperationException($"The metric '{Metric.Name}' returned no scores.");
        }

        if (scores.Scores.Count != layers)
        {
            throw new InvalidOperationException($"The metric '{Metric.Name}' returned {scores.Scores.Count} scores for a model of {layers} layers.");
        }

        for (int i = 0; i < layers; i++)
        {
            if (double.IsNaN(scores.Scores[i]))
            {
                throw new InvalidOperationException($"The metric '{Metric.Name}' returned NaN for layer {i}.");
            }
        }

        if (scores.PerPerturbationSet is { } sets)
        {
            for (int s = 0; s < sets.Count; s++)
            {
                if (sets[s] is null || sets[s].Count != layers)
                {
                    throw new InvalidOperationException($"The metric '{Metric.Name}' returned {sets[s]?.Count ?? 0} scores for perturbation set {s} of a model of {layers} layers.");
                }
            }
        }
    }

    private static void CheckFilterResult(ICandidateFilter filter, CandidateFilterResult result, IReadOnlyList<int> candidates)
    {
        if (result?.Kept is null || result.Excluded is null)
        {
            throw new InvalidOperationException($"The filter '{filter.Name}' returned no result.");
        }

        var allowed = new HashSet<int>(candidates);
        if (result.Kept.Any(l => !allowed.Contains(l)) || result.Kept.Distinct().Count() != result.Kept.Count)
        {
            throw new InvalidOperationException($"The filter '{filter.Name}' kept a layer that was not a candidate, or one layer twice.");
        }
    }

    private void CheckDecision(PruningDecision decision, IReadOnlyList<int> candidates, int layers)
    {
        if (decision?.LayersToRemove is null)
        {
            throw new InvalidOperationException($"The strategy '{Strategy.Name}' returned no decision.");
        }

        var allowed = new HashSet<int>(candidates);
        foreach (int layer in decision.LayersToRemove)
        {
            if (!allowed.Contains(layer))
            {
                throw new InvalidOperationException($"The strategy '{Strategy.Name}' chose layer {layer}, which is not a candidate of this round.");
            }
        }

        if (decision.LayersToRemove.Distinct().Count() != decision.LayersToRemove.Count)
        {
            throw new InvalidOperationException($"The strategy '{Strategy.Name}' chose a layer twice.");
        }

        if (decision.LayersToRemove.Count >= layers)
        {
            throw new InvalidOperationException($"The strategy '{Strategy.Name}' chose all {layers} layers; one must stay.");
        }
    }

    private sealed class ScoringProgressAdapter(IProgress<PruningProgress> progress, int round, int layers, long parameters) : IProgress<ScoringProgress>
    {
        public void Report(ScoringProgress value) =>
            progress.Report(new PruningProgress(round, PruningStage.Scoring, value.Completed, value.Total, layers, parameters));
    }
}
