using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Training;

/// <summary>
/// A training objective: the scalar loss of a batch (a graph to back-propagate through). The default is the mean
/// next-token cross-entropy (<see cref="CausalLMTrainer.CrossEntropyLoss"/>); knowledge distillation or a penalty can
/// be plugged in instead. It must be deterministic for exact resumption.
/// </summary>
/// <param name="model">The model being trained.</param>
/// <param name="batch">The batch.</param>
/// <returns>A scalar float32 loss tensor.</returns>
public delegate Tensor TrainingLoss(LlamaForCausalLM model, TrainingBatch batch);

/// <summary>Callbacks into each optimizer step; every method is optional.</summary>
public interface ITrainingHook
{
    /// <summary>After the gradients of all micro-batches are accumulated, before clipping (gradients may be changed here).</summary>
    /// <param name="context">The step.</param>
    void OnGradientsReady(TrainingStepContext context) { }

    /// <summary>After clipping, right before the optimizer update.</summary>
    /// <param name="context">The step.</param>
    void OnBeforeOptimizerStep(TrainingStepContext context) { }

    /// <summary>After the optimizer update (e.g. to re-apply a pruning mask).</summary>
    /// <param name="context">The step.</param>
    void OnStepCompleted(TrainingStepContext context) { }

    /// <summary>
    /// Writes the hook's own state (e.g. pruning scores and masks) into a checkpoint folder being written, so that a
    /// resumed run continues the same way. Called by <see cref="CausalLMTrainer"/> for every checkpoint, after the
    /// weights and optimizer state; use file names that other hooks do not use.
    /// </summary>
    /// <param name="checkpointFolder">The (temporary) checkpoint folder.</param>
    void SaveState(string checkpointFolder) { }

    /// <summary>
    /// Reads back what <see cref="SaveState"/> wrote, when <see cref="CausalLMTrainer.TryResume"/> loads a checkpoint
    /// (after the weights and optimizer state). Throw <see cref="InvalidDataException"/> naming the file when it is
    /// missing or does not match the hook's settings.
    /// </summary>
    /// <param name="checkpointFolder">The checkpoint folder.</param>
    void LoadState(string checkpointFolder) { }
}

/// <summary>What a hook sees of the current step.</summary>
/// <param name="Model">The model.</param>
/// <param name="Step">The zero-based optimizer step being made.</param>
/// <param name="LearningRate">Its learning rate.</param>
/// <param name="TrainLoss">The mean loss of its micro-batches.</param>
/// <param name="GradientNorm">The global gradient L2 norm before clipping (NaN before it is computed).</param>
public sealed record TrainingStepContext(LlamaForCausalLM Model, long Step, double LearningRate, double TrainLoss, double GradientNorm);

/// <summary>Progress of a run, reported after every optimizer step.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">Optimizer steps planned.</param>
/// <param name="TrainLoss">The last step's mean loss.</param>
/// <param name="LearningRate">The last step's learning rate.</param>
/// <param name="GradientNorm">The last step's gradient norm before clipping.</param>
/// <param name="ValidationLoss">The validation loss, when it was evaluated at this step.</param>
/// <param name="TokensSeen">Target tokens trained on so far (whole run, resumed parts included).</param>
/// <param name="TokensPerSecond">Training throughput of this session.</param>
/// <param name="Elapsed">Training time of the whole run so far.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, double TrainLoss, double LearningRate, double GradientNorm, double? ValidationLoss, long TokensSeen, double TokensPerSecond, TimeSpan Elapsed);

/// <summary>One optimizer step in the loss history.</summary>
/// <param name="Step">Optimizer steps done after it (1-based).</param>
/// <param name="TrainLoss">Its mean loss.</param>
/// <param name="LearningRate">Its learning rate.</param>
/// <param name="GradientNorm">Its gradient norm before clipping.</param>
public sealed record TrainStepRecord(long Step, double TrainLoss, double LearningRate, double GradientNorm);

/// <summary>One validation evaluation.</summary>
/// <param name="Step">Optimizer steps done when it was made.</param>
/// <param name="Loss">The mean validation loss (nats per token).</param>
/// <param name="TokensSeen">Target tokens trained on by then.</param>
public sealed record ValidationRecord(long Step, double Loss, long TokensSeen);

/// <summary>Why a run ended.</summary>
public enum TrainingStopReason
{
    /// <summary>All planned steps were made.</summary>
    Completed,
    /// <summary>The validation loss flattened (early stopping).</summary>
    EarlyStopped,
    /// <summary><see cref="Pip.Training.TrainingOptions.MaxDuration"/> was reached before the planned steps.</summary>
    TimeLimit,
}

/// <summary>The outcome of <see cref="CausalLMTrainer.Train"/>.</summary>
/// <param name="Steps">Optimizer steps done in total.</param>
/// <param name="StopReason">Why it ended.</param>
/// <param name="TokensSeen">Target tokens trained on in total.</param>
/// <param name="Elapsed">Training time in total (resumed sessions included).</param>
/// <param name="History">Every step.</param>
/// <param name="Validation">Every validation evaluation.</param>
public sealed record TrainingResult(long Steps, TrainingStopReason StopReason, long TokensSeen, TimeSpan Elapsed, IReadOnlyList<TrainStepRecord> History, IReadOnlyList<ValidationRecord> Validation)
{
    /// <summary>The last validation loss, or null.</summary>
    public double? FinalValidationLoss => Validation.Count == 0 ? null : Validation[^1].Loss;

    /// <summary>The last training loss, or NaN when no step was made.</summary>
    public double FinalTrainLoss => History.Count == 0 ? double.NaN : History[^1].TrainLoss;
}
