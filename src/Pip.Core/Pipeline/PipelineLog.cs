using Microsoft.Extensions.Logging;

namespace Pip;

/// <summary>The pipeline's log messages.</summary>
internal static partial class PipelineLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "Pruning {Architecture}: {LayerCount} layers, {ParameterCount} parameters; metric {Metric}, strategy {Strategy}, target {Target}, seed {Seed}")]
    public static partial void RunStarting(ILogger logger, string architecture, int layerCount, long parameterCount, string metric, string strategy, string target, int seed);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Round {Round}: made {SetCount} perturbation set(s) of {SampleCount} twins in {Seconds} s")]
    public static partial void Perturbed(ILogger logger, int round, int setCount, int sampleCount, double seconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Round {Round}, set {Set}: sample {Sample} got no edit (no word long enough); its twin equals it")]
    public static partial void NoEdit(ILogger logger, int round, int set, int sample);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Round {Round}: scored {LayerCount} layers with {Metric} in {Seconds} s")]
    public static partial void Scored(ILogger logger, int round, int layerCount, string metric, double seconds);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Round {Round}: layer {Layer} (original {OriginalLayer}) excluded by {Filter}: {Reason}")]
    public static partial void Excluded(ILogger logger, int round, int layer, int originalLayer, string filter, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Round {Round}: removed layer {Layer} (original {OriginalLayer}), score {Score}, {ParameterCount} parameters")]
    public static partial void Removed(ILogger logger, int round, int layer, int originalLayer, double score, long parameterCount);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information,
        Message = "Pruning done after {Rounds} round(s): removed {RemovedLayers} layer(s), {RemovedRatio} of the parameters; stopped: {StopReason}")]
    public static partial void Completed(ILogger logger, int rounds, int removedLayers, double removedRatio, PruningStopReason stopReason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Round {Round}: no candidate layer is left after the filters; stopping before the target")]
    public static partial void NoCandidates(ILogger logger, int round);
}
