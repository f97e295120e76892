using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Pip.Torch.Training.Lora;

/// <summary>The outcome of <see cref="LoraRecovery.RunAsync"/>.</summary>
/// <param name="Training">The training run (steps, losses, validation history).</param>
/// <param name="AdaptedModules">The number of linear modules that had an adapter.</param>
/// <param name="TrainableParameters">The number of adapter parameters trained.</param>
/// <param name="BaseParameters">The number of parameters of the model itself (unchanged by merging).</param>
/// <param name="Resumed">Whether the run continued from a checkpoint.</param>
/// <param name="Adapters">The adapters, still attached, when <see cref="LoraOptions.MergeAfterTraining"/> was false; null when merged.</param>
public sealed record LoraRecoveryResult(TrainingResult Training, int AdaptedModules, long TrainableParameters, long BaseParameters, bool Resumed, LoraAdapters? Adapters)
{
    /// <summary>Whether the adapters were merged into the model.</summary>
    public bool Merged => Adapters is null;

    /// <summary>The validation loss before training (the first evaluation), or null without validation.</summary>
    public double? InitialValidationLoss => Training.Validation.Count == 0 ? null : Training.Validation[0].Loss;

    /// <summary>The validation loss after training, or null without validation.</summary>
    public double? FinalValidationLoss => Training.FinalValidationLoss;
}

/// <summary>
/// LoRA recovery of a pruned model in one call (the recovery stage of LLM-Pruner / Shortened LLaMA): attach LoRA
/// adapters to the linear layers, train only them with <see cref="CausalLMTrainer"/> on packed text, then merge them
/// into the weights so that the model stays a plain Hugging Face model of the same shape.
/// </summary>
public static class LoraRecovery
{
    /// <summary>
    /// Recovers a (pruned) model with LoRA: attaches adapters (<see cref="LoraAdapters.Attach"/>), resumes from
    /// <see cref="Pip.Training.TrainingOptions.CheckpointFolder"/> when it holds a checkpoint and
    /// <see cref="LoraOptions.ResumeFromCheckpoint"/> is set, trains the adapters (checkpoints hold only the adapters
    /// and their optimizer state), then merges them (<see cref="LoraOptions.MergeAfterTraining"/>) or leaves them
    /// attached in the result. On failure or cancellation the adapters are removed and the model is left as it was
    /// (a cancelled run with a checkpoint folder has written its checkpoint first, so it can be resumed).
    /// </summary>
    /// <param name="model">The model; changed in place (merged weights). Its tokenizer is not used.</param>
    /// <param name="train">The training sequences (at least one batch).</param>
    /// <param name="validation">Held-out sequences for the validation loss (before, during and after training), or null.</param>
    /// <param name="options">The settings; validated first.</param>
    /// <param name="progress">Receives progress synchronously after each step, or null.</param>
    /// <param name="logger">Logs the run, or null.</param>
    /// <param name="cancellationToken">Stops training between steps.</param>
    /// <returns>The outcome. The work runs synchronously on the calling thread.</returns>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid (every problem listed).</exception>
    /// <exception cref="InvalidDataException">The checkpoint folder holds a checkpoint of another run.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static Task<LoraRecoveryResult> RunAsync(TorchCausalLM model, PackedSequences train, PackedSequences? validation, LoraOptions options,
        IProgress<TrainingProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count < options.Training.BatchSize)
            throw new ArgumentException($"The training data has {train.Count} sequences of {train.SequenceLength} tokens, fewer than one batch ({options.Training.BatchSize}).", nameof(train));
        cancellationToken.ThrowIfCancellationRequested();
        logger ??= NullLogger.Instance;

        var module = model.Module;
        var baseParameters = module.CountParameters().Total;
        var adapters = LoraAdapters.Attach(module, options);
        try
        {
            LoraRecoveryLog.Attached(logger, adapters.Adapters.Count, options.Rank, options.Alpha, adapters.ParameterCount, baseParameters,
                100.0 * adapters.ParameterCount / baseParameters);
            TrainingResult result;
            bool resumed = false;
            using (var trainer = new CausalLMTrainer(module, options.Training, logger))
            {
                if (options.ResumeFromCheckpoint) resumed = trainer.TryResume();
                result = trainer.Train(train, validation, progress, cancellationToken);
            }

            if (result.FinalValidationLoss is { } final && result.Validation.Count > 0)
                LoraRecoveryLog.Validation(logger, result.Validation[0].Loss, Math.Exp(result.Validation[0].Loss), final, Math.Exp(final));
            if (!options.MergeAfterTraining)
                return Task.FromResult(new LoraRecoveryResult(result, adapters.Adapters.Count, adapters.ParameterCount, baseParameters, resumed, adapters));

            int count = adapters.Adapters.Count;
            long trainable = adapters.ParameterCount;
            adapters.Merge();
            LoraRecoveryLog.Merged(logger, count);
            return Task.FromResult(new LoraRecoveryResult(result, count, trainable, baseParameters, resumed, null));
        }
        catch
        {
            adapters.Dispose();
            throw;
        }
    }
}

/// <summary>Log messages of <see cref="LoraRecovery"/>.</summary>
internal static partial class LoraRecoveryLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "LoRA: {Modules} adapters of rank {Rank} (alpha {Alpha}), {Trainable:N0} trainable parameters ({Percent:F2} % of {Base:N0}).")]
    public static partial void Attached(ILogger logger, int modules, int rank, double alpha, long trainable, long @base, double percent);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "LoRA: validation loss {Before:F4} (perplexity {PplBefore:F2}) before, {After:F4} (perplexity {PplAfter:F2}) after.")]
    public static partial void Validation(ILogger logger, double before, double pplBefore, double after, double pplAfter);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "LoRA: merged {Modules} adapters into the base weights.")]
    public static partial void Merged(ILogger logger, int modules);
}
