using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;
using Pip.Torch;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using static TorchSharp.torch;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>distill</c>: knowledge-distillation recovery of a (pruned) student from its teacher (e.g. the dense model before
/// pruning) on a plain-text file: every weight of the student is trained on
/// <c>α·LM + (1 − α)·T²·KL(teacher ‖ student)</c> (<see cref="DistillationLoss"/>), and the student is saved as a
/// standard checkpoint.
/// </summary>
/// <remarks>
/// The text is read as by <c>recover</c> (<see cref="TrainingText"/>). Everything that can be checked is checked before
/// the weights are loaded: the options (every problem at once), the folders (the output differs from both inputs,
/// which are never written), the vocabularies and tokenizers of teacher and student. The validation loss is the plain
/// language-model loss, so that the perplexities before and after compare with any other run. The output folder is
/// written atomically at the end.
/// </remarks>
internal static class DistillCommand
{
    public static Command Create(CliContext context)
    {
        var student = new Option<string>("--student", "-s")
        {
            Description = "The student model folder (Hugging Face layout), e.g. a pruned model: all its weights are trained. It is not modified.",
            Required = true,
            HelpName = "DIR",
        };
        var teacher = new Option<string>("--teacher")
        {
            Description = "The teacher model folder, e.g. the dense model the student was pruned from; it needs the student's vocabulary and tokenizer. It is not modified.",
            Required = true,
            HelpName = "DIR",
        };
        var output = CommonOptions.Out("The folder to write the distilled student to (config, safetensors, tokenizer files), atomically.");
        var alpha = FineTuningOptions.Alpha(withDefault: true);
        var temperature = FineTuningOptions.Temperature(withDefault: true);
        var o = FineTuningOptions.Create();

        var command = new Command("distill", "Recover a (pruned) student by knowledge distillation from a teacher on a text file: train all its weights on α·LM + (1 − α)·T²·KL(teacher ‖ student), save it.");
        foreach (var option in new Option[] { student, teacher, output }.Concat(o.DataOptions).Concat([alpha, temperature]).Concat(o.RunOptions))
            command.Options.Add(option);

        CommandRunner.SetBody(command, context, run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();

            // 1. Paths, before anything slow.
            var overwriting = run.Require(o.Overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var studentFolder = ModelLoading.RequireModelFolder(run.Require(student));
            var teacherFolder = ModelLoading.RequireModelFolder(run.Require(teacher));
            if (outFolder == studentFolder || outFolder == teacherFolder)
                throw new CliInputException($"Output folder '{outFolder}' is the {(outFolder == studentFolder ? "student" : "teacher")} folder; write the distilled model to another folder.");
            var lines = o.ReadLines(run);

            // 2. Every option, validated together.
            var problems = new List<string>();
            var training = o.CreateTraining(run, lines.Valid is not null, problems);
            var distillation = FineTuningOptions.CreateDistillation(run, alpha, temperature, problems);
            if (training.CheckpointFolder is { } checkpointFolder && (checkpointFolder == outFolder || checkpointFolder == studentFolder || checkpointFolder == teacherFolder))
                problems.Add($"Checkpoint folder '{checkpointFolder}' must differ from the student, teacher and output folders.");
            OptionProblems.ThrowIfAny(problems);

            // 3. Same vocabulary, then the models and the tokens.
            TeacherModels.CheckSameVocabulary(teacherFolder, TeacherModels.ReadConfig(teacherFolder), studentFolder, TeacherModels.ReadConfig(studentFolder));
            using var lm = o.LoadModel(run, studentFolder);
            var tokenizer = ModelLoading.RequireTokenizer(lm);
            TeacherModels.CheckSameTokenizer(teacherFolder, studentFolder, tokenizer, lines, run.Logger);
            var storedType = o.StoredType(run, lm);
            var sequenceLength = run.Require(o.SequenceLength);
            var (train, validation) = o.Pack(run, lines, tokenizer, lm, training);
            using var teacherLm = o.LoadTeacher(run, teacherFolder);
            double? teacherLoss = validation is null ? null : TeacherModels.ValidationLoss(teacherLm.Module, validation, training.MaxValidationSequences, training.BatchSize, ct);
            var parametersBefore = lm.ParameterCount;

            // 4. Training.
            var clock = Stopwatch.StartNew();
            TrainingResult result;
            bool resumed;
            using (var trainer = new CausalLMTrainer(lm.Module, training, run.Logger, DistillationLoss.Create(teacherLm.Module, distillation)))
                (result, resumed) = FineTuningOptions.Train(trainer, train, validation, run);
            var trainingSeconds = clock.Elapsed.TotalSeconds;

            // 5. Output, atomically.
            ModelLoading.Save(run, lm, outFolder, storedType, overwriting);

            double? before = result.Validation.Count == 0 ? null : result.Validation[0].Loss;
            var summary = new DistillResult(
                Student: studentFolder,
                Teacher: teacherFolder,
                Output: outFolder,
                Text: lines.TextFile,
                Validation: lines.ValidationDescription,
                Alpha: distillation.Alpha,
                Temperature: distillation.Temperature,
                Parameters: parametersBefore,
                TeacherParameters: teacherLm.ParameterCount,
                TrainSequences: train.Count,
                SequenceLength: sequenceLength,
                WarmupSteps: training.WarmupSteps,
                Steps: result.Steps,
                StopReason: result.StopReason.ToString(),
                Resumed: resumed,
                TokensSeen: result.TokensSeen,
                FirstTrainLoss: result.History.Count == 0 ? null : Math.Round(result.History[0].TrainLoss, 6),
                FinalTrainLoss: result.History.Count == 0 ? null : Math.Round(result.FinalTrainLoss, 6),
                ValidationLossBefore: Round(before),
                ValidationLossAfter: Round(result.FinalValidationLoss),
                PerplexityBefore: Round(before is { } b ? Math.Exp(b) : null),
                PerplexityAfter: Round(result.FinalValidationLoss is { } f ? Math.Exp(f) : null),
                TeacherValidationLoss: Round(teacherLoss),
                TeacherPerplexity: Round(teacherLoss is { } t ? Math.Exp(t) : null),
                SaveDtype: CommonOptions.DtypeName(storedType),
                TrainingSeconds: Math.Round(trainingSeconds, 3),
                Seconds: Math.Round(total.Elapsed.TotalSeconds, 3));
            if (run.Require(o.Json)) ResultWriter.WriteJson(run.Out, summary);
            else WriteTable(run.Out, summary);
            return ExitCodes.Success;
        });
        return command;
    }

    internal static double? Round(double? value) => value is { } x ? Math.Round(x, 6) : null;

    /// <summary>A validation loss and its perplexity, or "n/a".</summary>
    internal static string Loss(double? loss, double? perplexity) =>
        loss is null ? "n/a" : $"{ResultWriter.Number(loss.Value, 4)} (perplexity {ResultWriter.Number(perplexity!.Value, 2)})";

    private static void WriteTable(TextWriter output, DistillResult r)
    {
        List<(string, string)> rows =
        [
            ("Student", $"{r.Student} ({ResultWriter.Count(r.Parameters)} parameters)"),
            ("Teacher", $"{r.Teacher} ({ResultWriter.Count(r.TeacherParameters)} parameters)"),
            ("Distilled model", r.Output),
            ("Training text", $"{r.Text} ({ResultWriter.Count(r.TrainSequences)} sequences of {r.SequenceLength} tokens)"),
            ("Validation", r.Validation ?? "none"),
            ("Loss", $"{r.Alpha.ToString(CultureInfo.InvariantCulture)}·LM + {(1 - r.Alpha).ToString(CultureInfo.InvariantCulture)}·T²·KL, T = {r.Temperature.ToString(CultureInfo.InvariantCulture)}"),
            ("Steps", $"{r.Steps} ({r.StopReason}{(r.Resumed ? ", resumed" : "")}), {ResultWriter.Count(r.TokensSeen)} tokens, warm-up {r.WarmupSteps}"),
            ("Train loss", r.FirstTrainLoss is null ? "n/a" : $"{ResultWriter.Number(r.FirstTrainLoss.Value, 4)} → {ResultWriter.Number(r.FinalTrainLoss!.Value, 4)}"),
            ("Validation loss before", Loss(r.ValidationLossBefore, r.PerplexityBefore)),
            ("Validation loss after", Loss(r.ValidationLossAfter, r.PerplexityAfter)),
            ("Teacher validation loss", Loss(r.TeacherValidationLoss, r.TeacherPerplexity)),
            ("Saved as", r.SaveDtype),
            ("Time", $"{ResultWriter.Number(r.Seconds, 1)} s (training {ResultWriter.Number(r.TrainingSeconds, 1)} s)"),
        ];
        ResultWriter.WriteTable(output, rows);
    }
}

/// <summary>The result of <c>distill</c>. Validation losses are language-model losses (nats per token).</summary>
internal sealed record DistillResult(string Student, string Teacher, string Output, string Text, string? Validation, double Alpha, double Temperature,
    long Parameters, long TeacherParameters, int TrainSequences, int SequenceLength, int WarmupSteps, long Steps, string StopReason, bool Resumed, long TokensSeen,
    double? FirstTrainLoss, double? FinalTrainLoss, double? ValidationLossBefore, double? ValidationLossAfter, double? PerplexityBefore, double? PerplexityAfter,
    double? TeacherValidationLoss, double? TeacherPerplexity, string SaveDtype, double TrainingSeconds, double Seconds);
