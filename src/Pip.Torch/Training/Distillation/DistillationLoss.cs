using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Training.Distillation;

/// <summary>
/// Knowledge distillation for recovery training after any pruning method:
/// <c>loss = α·LM + (1 − α)·T²·KL(p_teacher ‖ p_student)</c>, where LM is the mean next-token cross-entropy, the
/// distributions are the softmax of the logits divided by the temperature T, and both terms are averaged over the
/// non-padded positions (targets other than <see cref="DistillationConstants.IgnoreIndex"/>).
/// </summary>
/// <remarks>
/// <para>The T² factor (Hinton et al., 2015) keeps the gradient scale of the soft term independent of T. The teacher
/// is any <see cref="LlamaForCausalLM"/> with the student's vocabulary (the dense model before pruning, or a
/// checkpoint folder, see <see cref="LoadTeacher"/>); it runs in evaluation mode under <c>no_grad</c>, and everything is
/// computed in float32. The loss is deterministic, as <see cref="CausalLMTrainer"/>'s exact resumption needs.</para>
/// </remarks>
public static class DistillationLoss
{
    /// <summary>
    /// A <see cref="TrainingLoss"/> for <see cref="CausalLMTrainer"/> that distils <paramref name="teacher"/> into the
    /// trained model. The teacher is not owned (dispose it after training) and must stay on the batches' device.
    /// </summary>
    /// <param name="teacher">The teacher; its parameters are not changed.</param>
    /// <param name="options">The settings (validated now and copied).</param>
    /// <returns>The loss delegate.</returns>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid.</exception>
    public static TrainingLoss Create(LlamaForCausalLM teacher, DistillationOptions options)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var settings = options.Clone();
        return (student, batch) => Compute(student, teacher, batch, settings);
    }

    /// <summary>The distillation loss of one batch (a graph through the student only).</summary>
    /// <param name="student">The trained model.</param>
    /// <param name="teacher">The teacher (same vocabulary).</param>
    /// <param name="batch">The batch; targets equal to <see cref="DistillationConstants.IgnoreIndex"/> are padding.</param>
    /// <param name="options">The settings.</param>
    /// <returns>A scalar float32 loss.</returns>
    /// <exception cref="ArgumentException">The vocabularies differ.</exception>
    public static Tensor Compute(LlamaForCausalLM student, LlamaForCausalLM teacher, TrainingBatch batch, DistillationOptions options)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(options);
        if (student.Config.VocabSize != teacher.Config.VocabSize)
            throw new ArgumentException($"The teacher's vocabulary ({teacher.Config.VocabSize} tokens) differs from the student's ({student.Config.VocabSize}).", nameof(teacher));
        using var scope = NewDisposeScope();
        if (options.LanguageModelLossWhenEvaluating && !student.training)
            return LanguageModelLoss(student.Logits(batch.InputIds), batch.Targets).MoveToOuterDisposeScope();

        Tensor teacherLogits;
        bool wasTraining = teacher.training;
        using (no_grad())
        {
            if (wasTraining) teacher.eval();
            try
            {
                teacherLogits = teacher.Logits(batch.InputIds).detach();
            }
            finally
            {
                if (wasTraining) teacher.train();
            }
        }
        var studentLogits = student.Logits(batch.InputIds);
        return Combine(studentLogits, teacherLogits, batch.Targets, options.Alpha, options.Temperature).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The loss from logits: <c>α·CE(student, targets) + (1 − α)·T²·mean KL(softmax(teacher/T) ‖ softmax(student/T))</c>
    /// over the positions whose target is not <see cref="DistillationConstants.IgnoreIndex"/>.
    /// </summary>
    /// <param name="studentLogits">Student logits [..., vocab].</param>
    /// <param name="teacherLogits">Teacher logits, same shape (no gradient flows into them).</param>
    /// <param name="targets">Next-token targets, the logits' shape without the vocabulary axis.</param>
    /// <param name="alpha">α in [0, 1].</param>
    /// <param name="temperature">T, positive.</param>
    /// <returns>A scalar float32 loss.</returns>
    /// <exception cref="ArgumentException">The shapes do not match.</exception>
    /// <exception cref="ArgumentOutOfRangeException">α or T is out of range.</exception>
    public static Tensor Combine(Tensor studentLogits, Tensor teacherLogits, Tensor targets, double alpha, double temperature)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        ArgumentNullException.ThrowIfNull(targets);
        if (!(alpha >= 0 && alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "α must be in [0, 1].");
        if (!(temperature > 0) || double.IsInfinity(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be positive and finite.");
        if (!studentLogits.shape.SequenceEqual(teacherLogits.shape))
            throw new ArgumentException($"The teacher's logits [{string.Join(", ", teacherLogits.shape)}] do not match the student's [{string.Join(", ", studentLogits.shape)}] (same vocabulary and batch needed).", nameof(teacherLogits));
        if (!studentLogits.shape[..^1].SequenceEqual(targets.shape))
            throw new ArgumentException($"The targets [{string.Join(", ", targets.shape)}] do not match the logits [{string.Join(", ", studentLogits.shape)}].", nameof(targets));

        using var scope = NewDisposeScope();
        var vocab = studentLogits.shape[^1];
        var student = studentLogits.reshape(-1, vocab).to(ScalarType.Float32);
        var teacher = teacherLogits.reshape(-1, vocab).to(ScalarType.Float32).detach();
        var flatTargets = targets.reshape(-1);
        var kept = flatTargets.ne(DistillationConstants.IgnoreIndex).to(ScalarType.Float32);
        var count = kept.sum().clamp_min(1.0);

        var lm = nn.functional.cross_entropy(student, flatTargets, ignore_index: DistillationConstants.IgnoreIndex);
        var studentLog = nn.functional.log_softmax(student / temperature, 1);
        var teacherLog = nn.functional.log_softmax(teacher / temperature, 1);
        var perPosition = (teacherLog.exp() * (teacherLog - studentLog)).sum(dim: 1);
        var kl = (perPosition * kept).sum() / count;
        var loss = alpha * lm + (1 - alpha) * temperature * temperature * kl;
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>The mean next-token cross-entropy over non-padded positions (float32).</summary>
    /// <param name="logits">Logits [..., vocab].</param>
    /// <param name="targets">Targets; <see cref="DistillationConstants.IgnoreIndex"/> is skipped.</param>
    /// <returns>A scalar loss.</returns>
    public static Tensor LanguageModelLoss(Tensor logits, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = NewDisposeScope();
        var flat = logits.reshape(-1, logits.shape[^1]).to(ScalarType.Float32);
        return nn.functional.cross_entropy(flat, targets.reshape(-1), ignore_index: DistillationConstants.IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads a teacher from a Hugging Face checkpoint folder in float32, in evaluation mode, with its parameters frozen
    /// (so that no gradient is kept for them). The caller owns (disposes) it.
    /// </summary>
    /// <param name="folder">The checkpoint folder.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    /// <returns>The teacher.</returns>
    public static LlamaForCausalLM LoadTeacher(string folder, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        // TorchCausalLM only wraps the module; its Dispose would dispose the module the caller now owns.
        var teacher = TorchCausalLM.Load(folder, ScalarType.Float32, device).Module;
        Freeze(teacher);
        return teacher;
    }

    /// <summary>Puts a model in evaluation mode and stops its parameters from requiring gradients (for use as a teacher).</summary>
    /// <param name="teacher">The model.</param>
    public static void Freeze(LlamaForCausalLM teacher)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        teacher.eval();
    }
}
