using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using static TorchSharp.torch;

namespace Pip.Cli.Infrastructure;

/// <summary>
/// Teachers of knowledge distillation (<c>distill</c>, <c>idea --kd-teacher</c>): the checks that a teacher speaks the
/// student's vocabulary, its loading (frozen, in evaluation mode) and its validation loss.
/// </summary>
internal static class TeacherModels
{
    /// <summary>The configuration of a model folder (checked to exist), without loading its weights.</summary>
    public static LlamaConfig ReadConfig(string folder) =>
        LlamaConfigSerializer.Load(Path.Combine(ModelLoading.RequireModelFolder(folder), CheckpointFolder.ConfigFileName));

    /// <summary>Fails, naming both folders, when the teacher's vocabulary size differs from the student's.</summary>
    /// <exception cref="CliInputException">The vocabulary sizes differ.</exception>
    public static void CheckSameVocabulary(string teacherFolder, LlamaConfig teacher, string studentFolder, LlamaConfig student)
    {
        if (teacher.VocabSize != student.VocabSize)
            throw new CliInputException($"Teacher folder '{teacherFolder}' has a vocabulary of {teacher.VocabSize:N0} tokens, student folder '{studentFolder}' one of {student.VocabSize:N0}; distillation needs the same vocabulary (the same tokenizer) in both.");
    }

    /// <summary>
    /// Fails, naming both folders, when the teacher's tokenizer differs from the student's: other special tokens or
    /// vocabulary size, or (when the tokenizer files differ) other token ids for any line of the text. A teacher
    /// without a tokenizer is accepted with a warning (only its vocabulary size is checked).
    /// </summary>
    /// <exception cref="CliInputException">The tokenizers differ.</exception>
    public static void CheckSameTokenizer(string teacherFolder, string studentFolder, HfTokenizer student, TrainingLines lines, ILogger logger)
    {
        var teacherFile = Path.Combine(teacherFolder, "tokenizer.json");
        if (!File.Exists(teacherFile))
        {
            logger.LogWarning("Teacher folder {Teacher} has no tokenizer.json: its token ids are assumed to be those of the student's tokenizer.", teacherFolder);
            return;
        }

        var teacher = HfTokenizer.Load(teacherFolder);
        string? difference = null;
        if (teacher.VocabSize != student.VocabSize) difference = $"{teacher.VocabSize:N0} tokens against {student.VocabSize:N0}";
        else if (teacher.BosTokenId != student.BosTokenId) difference = $"BOS token id {Id(teacher.BosTokenId)} against {Id(student.BosTokenId)}";
        else if (teacher.EosTokenId != student.EosTokenId) difference = $"EOS token id {Id(teacher.EosTokenId)} against {Id(student.EosTokenId)}";
        else if (teacher.AddBosByDefault != student.AddBosByDefault) difference = $"adds BOS: {teacher.AddBosByDefault} against {student.AddBosByDefault}";
        else if (!SameBytes(teacherFile, Path.Combine(studentFolder, "tokenizer.json")))
        {
            // Different files may still be the same tokenizer: what matters is the token ids of the text trained on.
            int number = 0;
            foreach (var line in lines.All)
            {
                number++;
                if (!teacher.Encode(line).AsSpan().SequenceEqual(student.Encode(line)))
                {
                    var shown = line.Length > 60 ? line[..60] + "…" : line;
                    difference = $"line {number} of the text (\"{shown}\") gets other token ids";
                    break;
                }
            }
        }
        if (difference is not null)
            throw new CliInputException($"Teacher folder '{teacherFolder}' and student folder '{studentFolder}' have different tokenizers ({difference}); distillation needs the same token ids in both.");
    }

    /// <summary>Loads a teacher (weights and config) in <paramref name="dtype"/> on <paramref name="device"/>, frozen and in evaluation mode.</summary>
    public static TorchCausalLM Load(CommandInvocation run, string folder, ScalarType dtype, Device device)
    {
        var teacher = ModelLoading.Load(run, folder, dtype, device);
        DistillationLoss.Freeze(teacher.Module);
        return teacher;
    }

    /// <summary>
    /// The teacher's mean language-model loss on (the first <paramref name="maxSequences"/>) validation sequences, as
    /// <see cref="CausalLMTrainer.EvaluateLoss"/> computes the student's.
    /// </summary>
    public static double ValidationLoss(LlamaForCausalLM teacher, PackedSequences validation, int maxSequences, int batchSize, CancellationToken cancellationToken)
    {
        int count = maxSequences > 0 ? Math.Min(maxSequences, validation.Count) : validation.Count;
        using var noGrad = no_grad();
        double sum = 0;
        long tokens = 0;
        for (int start = 0; start < count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, count - start);
            using var scope = NewDisposeScope();
            using var batch = validation.CreateBatch(Enumerable.Range(start, n).ToArray(), teacher.Device);
            using var loss = DistillationLoss.LanguageModelLoss(teacher.Logits(batch.InputIds), batch.Targets);
            sum += loss.item<float>() * batch.TokenCount;
            tokens += batch.TokenCount;
        }
        return sum / tokens;
    }

    private static string Id(int? id) => id?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none";

    private static bool SameBytes(string a, string b)
    {
        if (!File.Exists(b)) return false;
        var x = new FileInfo(a);
        var y = new FileInfo(b);
        return x.Length == y.Length && File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }
}
