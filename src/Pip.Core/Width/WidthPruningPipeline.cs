using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Internal;

namespace Pip;

/// <summary>
/// Runs a width pruning: score the units (attention key/value groups, MLP channels) of the layers in the range,
/// allocate the parameter budget over them (uniform or adaptive), remove them (with FLAP's bias compensation when
/// asked), and record everything in the same <see cref="PruningReport"/> as depth pruning (one round, with
/// <see cref="PruningRound.Width"/>).
/// </summary>
/// <remarks>
/// <para>The target is a ratio of all parameters of the model (embeddings and head included), removed at most; the
/// allocation's granularity is described in <see cref="WidthAllocator"/>.</para>
/// <para>Cancellation is checked before and inside scoring and just before the model changes: a cancelled run leaves
/// the model as it was. Built by <see cref="WidthPipelineBuilder"/>; immutable and reusable, one run at a time per model.</para>
/// </remarks>
public sealed partial class WidthPruningPipeline
{
    private readonly PipelineOptions _options;
    private readonly WidthPruningOptions _width;
    private readonly string? _groupReduction;
    private readonly ILogger _logger;

    internal WidthPruningPipeline(PipelineOptions options, WidthPruningOptions width, PruningSettings settings, IWidthImportanceMetric metric, string? groupReduction, ILogger logger)
    {
        _options = options;
        _width = width;
        Settings = settings;
        Metric = metric;
        _groupReduction = groupReduction;
        _logger = logger;
    }

    /// <summary>The settings every run of this pipeline records.</summary>
    public PruningSettings Settings { get; }

    /// <summary>The width importance metric.</summary>
    public IWidthImportanceMetric Metric { get; }

    /// <summary>A copy of the width options the pipeline uses.</summary>
    public WidthPruningOptions WidthOptions => _width.Clone();

    /// <summary>Prunes <paramref name="model"/> in place with samples loaded from <see cref="PipelineOptions.Calibration"/>.</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="progress">Receives progress, or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <exception cref="InvalidOperationException">No calibration file is set in the options.</exception>
    public Task<PruningReport> RunAsync(IWidthPrunableModel model, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (string.IsNullOrWhiteSpace(_options.Calibration?.FilePath))
        {
            throw new InvalidOperationException("No calibration samples: pass them to RunAsync or set PipelineOptions.Calibration.FilePath.");
        }

        CalibrationSet set = CalibrationSet.Load(_options.Calibration, cancellationToken);
        return RunAsync(model, set.Samples, progress, cancellationToken);
    }

    /// <summary>Prunes <paramref name="model"/> in place with a calibration set.</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="calibration">The calibration samples.</param>
    /// <param name="progress">Receives progress, or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public Task<PruningReport> RunAsync(IWidthPrunableModel model, CalibrationSet calibration, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        return RunAsync(model, calibration.Samples, progress, cancellationToken);
    }

    /// <summary>Prunes <paramref name="model"/> in place with the given samples.</summary>
    /// <param name="model">The model; it is changed in place.</param>
    /// <param name="samples">The calibration samples (at least one).</param>
    /// <param name="progress">Receives progress, or null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The report of the run.</returns>
    /// <exception cref="ArgumentException">No samples, a layer range outside the model, or bias compensation the model cannot carry.</exception>
    /// <exception cref="InvalidOperationException">The metric broke its contract (wrong number of scores, NaN, no input means for bias compensation).</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled (the model is unchanged).</exception>
    public async Task<PruningReport> RunAsync(IWidthPrunableModel model, IReadOnlyList<CalibrationSample> samples, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0 || samples.Any(s => s is null))
        {
            throw new ArgumentException("A width-pruning run needs at least one calibration sample, and none may be null.", nameof(samples));
        }

        cancellationToken.ThrowIfCancellationRequested();
        DateTimeOffset startedAt = DateTimeOffset.UtcNow;
        var watch = Stopwatch.StartNew();
        long originalParameters = model.ParameterCount;
        int layerCount = model.LayerCount;
        int[] original = [.. model.OriginalLayerIndices];
        (int start, int end) = ResolveRange(original);
        int[] inRange = [.. Enumerable.Range(0, layerCount).Where(l => original[l] >= start && original[l] < end)];
        var kinds = WidthAllocator.Kinds(_width.Units);
        if (_width.BiasCompensation)
        {
            foreach (var kind in kinds)
            {
                if (model.GetBiasCompensationObstacle(kind) is { } obstacle)
                {
                    throw new ArgumentException($"Bias compensation cannot be applied to this model's {kind.ToString().ToLowerInvariant()}: {obstacle}", nameof(model));
                }
            }
        }

        double ratio = _options.Target.ParameterRatio ?? throw new InvalidOperationException("Width pruning needs a parameter-ratio target.");
        double budget = ratio * originalParameters;
        Log.Starting(_logger, model.Architecture, layerCount, originalParameters, Metric.Name, Settings.Strategy, _width.Units, start, end, ratio);
        bool recordTokens = _options.RecordTokenIds;
        List<SampleRecord> sampleRecords = [.. samples.Select(s => new SampleRecord(s.Index, s.Text, recordTokens ? [.. model.Tokenize(s.Text)] : null))];

        // Scores.
        var sizes = inRange.Select(l => WidthLayerSizes.Of(model, l)).ToArray();
        var layerParameters = Enumerable.Range(0, layerCount).Select(model.GetLayerParameterCount).ToArray();
        IProgress<ScoringProgress>? scoringProgress = progress is null ? null : new ScoringAdapter(progress, layerCount, originalParameters);
        var request = new WidthImportanceRequest(model, samples, _width.Units, inRange, Seeds.Derive(_options.Seed, Seeds.MetricTag, 0), scoringProgress);
        WidthScores scores = await Metric.ScoreAsync(request, cancellationToken).ConfigureAwait(false);
        CheckScores(scores, sizes, kinds, layerCount);
        double scoringSeconds = watch.Elapsed.TotalSeconds;
        Log.Scored(_logger, inRange.Length, Metric.Name, scoringSeconds);

        // Allocation and removal.
        WidthAllocationResult allocation = WidthAllocator.Allocate(sizes, scores, _width.Units, _width.Allocation, budget);
        var plan = new WidthRemovalPlan
        {
            Heads = allocation.Heads.ToDictionary(p => p.Key, p => (IReadOnlyCollection<int>)p.Value),
            Channels = allocation.Channels.ToDictionary(p => p.Key, p => (IReadOnlyCollection<int>)p.Value),
            HeadInputMeans = _width.BiasCompensation && kinds.Contains(WidthUnitKind.Heads) ? Means(scores.HeadInputMeans, allocation.Heads.Keys, "o_proj") : null,
            ChannelInputMeans = _width.BiasCompensation && kinds.Contains(WidthUnitKind.Channels) ? Means(scores.ChannelInputMeans, allocation.Channels.Keys, "down_proj") : null,
        };
        var before = Enumerable.Range(0, layerCount).Select(l => WidthLayerSizes.Of(model, l)).ToArray();
        cancellationToken.ThrowIfCancellationRequested();
        progress?.Report(new PruningProgress(0, PruningStage.Removing, 0, allocation.Heads.Count + allocation.Channels.Count, layerCount, originalParameters));
        model.RemoveUnits(plan);

        var rangeSet = inRange.ToHashSet();
        var layerRecords = new List<WidthLayerRecord>(layerCount);
        var layerScores = new double[layerCount];
        for (int l = 0; l < layerCount; l++)
        {
            var headScores = rangeSet.Contains(l) && scores.Heads is { } hs ? hs[l] : null;
            var channelScores = rangeSet.Contains(l) && scores.Channels is { } cs ? cs[l] : null;
            layerScores[l] = (headScores?.Sum() ?? 0) + (channelScores?.Sum() ?? 0);
            var record = new WidthLayerRecord
            {
                Layer = l,
                OriginalLayer = original[l],
                InRange = rangeSet.Contains(l),
                HeadsBefore = before[l].Heads,
                HeadsAfter = model.GetUnitCount(l, WidthUnitKind.Heads),
                ChannelsBefore = before[l].Channels,
                ChannelsAfter = model.GetUnitCount(l, WidthUnitKind.Channels),
                ParameterCountBefore = layerParameters[l],
                ParameterCountAfter = model.GetLayerParameterCount(l),
                RemovedHeads = allocation.Heads.GetValueOrDefault(l) ?? [],
                RemovedChannels = allocation.Channels.GetValueOrDefault(l) ?? [],
                HeadScores = headScores is null ? null : [.. headScores],
                ChannelScores = channelScores is null ? null : [.. channelScores],
            };
            layerRecords.Add(record);
            if (record.RemovedHeads.Count + record.RemovedChannels.Count > 0)
            {
                Log.LayerPruned(_logger, l, original[l], record.HeadsBefore, record.HeadsAfter, record.ChannelsBefore, record.ChannelsAfter);
            }
        }

        var round = new PruningRound
        {
            Round = 0,
            LayerCountBefore = layerCount,
            LayerCountAfter = model.LayerCount,
            ParameterCountBefore = originalParameters,
            ParameterCountAfter = model.ParameterCount,
            OriginalLayerIndices = original,
            Scores = layerScores,
            Candidates = inRange,
            Removed = [],
            ScoringSeconds = scoringSeconds,
            WallSeconds = watch.Elapsed.TotalSeconds,
            Width = new WidthRoundRecord
            {
                Units = _width.Units,
                Allocation = _width.Allocation.ToString().ToLowerInvariant(),
                GroupReduction = _groupReduction,
                LayerStart = start,
                LayerEnd = end,
                BudgetParameters = budget,
                BiasCompensation = _width.BiasCompensation,
                Layers = layerRecords,
            },
        };
        progress?.Report(new PruningProgress(0, PruningStage.RoundCompleted, 1, 1, model.LayerCount, model.ParameterCount, round));

        var report = new PruningReport
        {
            Architecture = model.Architecture,
            Settings = Settings,
            StartedAt = startedAt,
            OriginalLayerCount = layerCount,
            OriginalParameterCount = originalParameters,
            FinalLayerCount = model.LayerCount,
            FinalParameterCount = model.ParameterCount,
            RemovedOriginalLayers = [],
            RemainingOriginalLayers = [.. model.OriginalLayerIndices],
            Samples = sampleRecords,
            Rounds = [round],
            StopReason = allocation.TargetReached ? PruningStopReason.TargetReached : PruningStopReason.UnitsExhausted,
            TargetReached = allocation.TargetReached,
            WallSeconds = watch.Elapsed.TotalSeconds,
        };
        Log.Completed(_logger, allocation.RemovedParameters, report.RemovedParameterRatio, report.StopReason);
        return report;
    }

    /// <summary>The layer range in original indices: the options' or the default one, checked against the model.</summary>
    private (int Start, int End) ResolveRange(IReadOnlyList<int> original)
    {
        int originalCount = original.Count == 0 ? 0 : original.Max() + 1;
        (int defaultStart, int defaultEnd) = WidthConstants.DefaultLayerRange(Math.Max(1, originalCount));
        int start = _width.LayerStart ?? defaultStart;
        int end = Math.Min(_width.LayerEnd ?? defaultEnd, originalCount);
        if (start >= end || !original.Any(o => o >= start && o < end))
        {
            throw new ArgumentException($"The layer range [{start}, {_width.LayerEnd ?? defaultEnd}) holds no layer of this model (original layer indices {string.Join(", ", original)}).", nameof(original));
        }

        return (start, end);
    }

    private void CheckScores(WidthScores scores, IReadOnlyList<WidthLayerSizes> sizes, IReadOnlyList<WidthUnitKind> kinds, int layerCount)
    {
        if (scores is null)
        {
            throw new InvalidOperationException($"The width metric '{Metric.Name}' returned no scores.");
        }

        foreach (var kind in kinds)
        {
            var perLayer = scores.Of(kind);
            if (perLayer is null || perLayer.Count != layerCount)
            {
                throw new InvalidOperationException($"The width metric '{Metric.Name}' returned {(perLayer is null ? "no" : perLayer.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))} {kind.ToString().ToLowerInvariant()} score lists for a model of {layerCount} layers.");
            }

            foreach (var size in sizes)
            {
                var s = perLayer[size.Layer];
                int expected = size.Count(kind);
                if (s is null || s.Count != expected)
                {
                    throw new InvalidOperationException($"The width metric '{Metric.Name}' returned {s?.Count ?? 0} {kind.ToString().ToLowerInvariant()} scores for layer {size.Layer}, which has {expected}.");
                }

                if (s.Any(double.IsNaN))
                {
                    throw new InvalidOperationException($"The width metric '{Metric.Name}' returned NaN for a {kind.ToString().ToLowerInvariant()} score of layer {size.Layer}.");
                }
            }
        }
    }

    private Dictionary<int, IReadOnlyList<double>> Means(IReadOnlyList<IReadOnlyList<double>>? means, IEnumerable<int> layers, string projection)
    {
        if (means is null)
        {
            throw new InvalidOperationException($"Bias compensation needs the mean input of {projection}, but the width metric '{Metric.Name}' does not measure it; use a metric that does (flap), or turn bias compensation off.");
        }

        return layers.ToDictionary(l => l, l => means[l]);
    }

    private sealed class ScoringAdapter(IProgress<PruningProgress> progress, int layers, long parameters) : IProgress<ScoringProgress>
    {
        public void Report(ScoringProgress value) =>
            progress.Report(new PruningProgress(0, PruningStage.Scoring, value.Completed, value.Total, layers, parameters));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 20, Level = LogLevel.Information,
            Message = "Width pruning {Architecture}: {LayerCount} layers, {ParameterCount} parameters; metric {Metric}, {Strategy}, units {Units}, layers [{Start}, {End}), ratio {Ratio}")]
        public static partial void Starting(ILogger logger, string architecture, int layerCount, long parameterCount, string metric, string strategy, WidthUnits units, int start, int end, double ratio);

        [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Scored the units of {LayerCount} layers with {Metric} in {Seconds} s")]
        public static partial void Scored(ILogger logger, int layerCount, string metric, double seconds);

        [LoggerMessage(EventId = 22, Level = LogLevel.Information, Message = "Layer {Layer} (original {OriginalLayer}): key/value groups {HeadsBefore} → {HeadsAfter}, channels {ChannelsBefore} → {ChannelsAfter}")]
        public static partial void LayerPruned(ILogger logger, int layer, int originalLayer, int headsBefore, int headsAfter, int channelsBefore, int channelsAfter);

        [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "Width pruning done: removed {Removed} parameters, {RemovedRatio} of the model; stopped: {StopReason}")]
        public static partial void Completed(ILogger logger, long removed, double removedRatio, PruningStopReason stopReason);
    }
}
