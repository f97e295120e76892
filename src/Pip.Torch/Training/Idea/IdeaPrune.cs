using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Training;

namespace Pip.Torch.Training.Idea;

/// <summary>The outcome of <see cref="IdeaPrune.Train"/>.</summary>
/// <param name="Training">The training run (one schedule over the whole run).</param>
/// <param name="Config">The model's configuration afterwards: the target intermediate size when <paramref name="Pruned"/>.</param>
/// <param name="Pruned">Whether the masks reached the target and were applied physically (false when the run stopped before the window's end).</param>
/// <param name="Scores">The final smoothed neuron scores per layer (of the full-width numbering), or null when no update was made.</param>
public sealed record IdeaPruneResult(TrainingResult Training, LlamaConfig Config, bool Pruned, IReadOnlyList<float[]>? Scores);

/// <summary>
/// The integrated enlarge-and-prune pipeline of IDEA Prune (Li et al., 2025) in one call: train the (enlarged) model
/// under one warm-up + cosine schedule with an <see cref="IdeaPruneHook"/> that shrinks the FFN width inside
/// <c>[StartStep, EndStep)</c>, recover until the schedule's end, then remove the masked neurons physically.
/// </summary>
public static class IdeaPrune
{
    /// <summary>Runs (or, with <paramref name="resume"/>, continues) the pipeline.</summary>
    /// <param name="model">The enlarged model; trained and then pruned in place.</param>
    /// <param name="training">The one schedule of the whole run (warm-up only at its start).</param>
    /// <param name="pruning">The pruning window, target width and score settings; the window must end by <see cref="TrainingOptions.MaxSteps"/>.</param>
    /// <param name="train">Training sequences.</param>
    /// <param name="validation">Validation sequences, or null.</param>
    /// <param name="loss">The objective (e.g. <see cref="Distillation.DistillationLoss.Create"/>), or null for the cross-entropy.</param>
    /// <param name="extraHooks">Further hooks, run after the pruning hook, or null.</param>
    /// <param name="resume">Continue from <see cref="TrainingOptions.CheckpointFolder"/> when a checkpoint is there.</param>
    /// <param name="logger">A logger, or null.</param>
    /// <param name="progress">Progress after each step, or null.</param>
    /// <param name="cancellationToken">Stops between steps (a checkpoint is written when a folder is set).</param>
    /// <returns>The outcome.</returns>
    /// <exception cref="ArgumentException">The window ends after the schedule.</exception>
    public static IdeaPruneResult Train(LlamaForCausalLM model, TrainingOptions training, IdeaPruneOptions pruning, PackedSequences train,
        PackedSequences? validation = null, TrainingLoss? loss = null, IEnumerable<ITrainingHook>? extraHooks = null, bool resume = false,
        ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(pruning);
        ArgumentNullException.ThrowIfNull(train);
        training.Validate();
        pruning.Validate();
        if (pruning.EndStep > training.MaxSteps)
            throw new ArgumentException($"The pruning window ends at step {pruning.EndStep}, after the schedule's {training.MaxSteps} steps.", nameof(pruning));
        var hook = new IdeaPruneHook(model, pruning, logger);
        var hooks = new List<ITrainingHook> { hook };
        if (extraHooks is not null) hooks.AddRange(extraHooks);
        using var trainer = new CausalLMTrainer(model, training, logger, loss, hooks);
        if (resume) trainer.TryResume();
        var result = trainer.Train(train, validation, progress, cancellationToken);
        var scores = hook.Scores;
        if (!hook.IsComplete) return new IdeaPruneResult(result, model.Config, false, scores);
        var config = hook.ApplyPruning();
        return new IdeaPruneResult(result, config, true, scores);
    }
}
