using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Cli.Infrastructure;
using Pip.Torch;
using Pip.Torch.Models;

namespace Pip.Cli.Tests.Commands;

[Collection(TinyModelCollection.Name)]
public sealed class DistillCommandTests(TinyModelFixture fixture) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-distill-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>A student pruned from the fixture's model: its layer 2 removed.</summary>
    private string PrunedStudent()
    {
        var folder = Path.Combine(_root, "student");
        using var lm = TorchCausalLM.Load(fixture.ModelFolder);
        lm.RemoveLayers([2]);
        lm.Save(folder);
        return folder;
    }

    private static string Hash(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    [Fact]
    public async Task Distill_PrunedStudent_TrainsItWritesALoadableModelAndLowersTheValidationLoss()
    {
        var student = PrunedStudent();
        var studentWeights = Hash(Path.Combine(student, "model.safetensors"));
        var teacherWeights = Hash(Path.Combine(fixture.ModelFolder, "model.safetensors"));
        var outFolder = Path.Combine(_root, "distilled");

        var run = await CliRunner.RunAsync("distill", "--student", student, "--teacher", fixture.ModelFolder, "--text", fixture.TextFile, "--out", outFolder,
            "--holdout", "5", "--alpha", "0.5", "--temperature", "2", "--steps", "12", "--lr", "3e-3", "--batch-size", "4", "--seq-len", "16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        root.GetProperty("steps").GetInt64().Should().Be(12);
        root.GetProperty("stop_reason").GetString().Should().Be("Completed");
        root.GetProperty("warmup_steps").GetInt32().Should().Be(1, "a tenth of the steps by default");
        root.GetProperty("validation").GetString().Should().Contain("every 5th line");
        var before = root.GetProperty("validation_loss_before").GetDouble();
        var after = root.GetProperty("validation_loss_after").GetDouble();
        after.Should().BeLessThan(before, "distillation with α = 0.5 also fits the text, whose held-out lines repeat the training sentences");
        root.GetProperty("perplexity_after").GetDouble().Should().BeApproximately(Math.Exp(after), 1e-3);
        root.GetProperty("teacher_validation_loss").GetDouble().Should().BeGreaterThan(0);

        using var original = TorchCausalLM.Load(student);
        using var distilled = TorchCausalLM.Load(outFolder);
        distilled.LayerCount.Should().Be(3);
        distilled.ParameterCount.Should().Be(original.ParameterCount);
        root.GetProperty("parameters").GetInt64().Should().Be(original.ParameterCount);
        distilled.Tokenizer.Should().NotBeNull("the tokenizer files are copied");
        var want = original.Module.NamedWeights();
        distilled.Module.NamedWeights().Count(w => !w.Value.equal(want[w.Key]).all().item<bool>()).Should().Be(want.Count, "every weight is trained");

        Hash(Path.Combine(student, "model.safetensors")).Should().Be(studentWeights, "the student folder is not written");
        Hash(Path.Combine(fixture.ModelFolder, "model.safetensors")).Should().Be(teacherWeights, "the teacher folder is not written");
        File.Exists(Path.Combine(outFolder, "settings.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Distill_StudentIsItsOwnTeacherWithAlphaZero_TrainsOnTheDistillationTermOnly()
    {
        var run = await CliRunner.RunAsync("distill", "--student", fixture.ModelFolder, "--teacher", fixture.ModelFolder, "--text", fixture.TextFile,
            "--out", Path.Combine(_root, "self"), "--alpha", "0", "--steps", "2", "--batch-size", "2", "--seq-len", "16", "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        root.GetProperty("first_train_loss").GetDouble().Should().BeApproximately(0, 1e-5, "the KL divergence of a model from itself is 0 (its language-model loss is about ln 512)");
        root.GetProperty("validation").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("validation_loss_before").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task Distill_TeacherWithAnotherVocabularySize_FailsNamingBothFolders()
    {
        var student = PrunedStudent();
        var teacher = Path.Combine(_root, "teacher-300");
        var config = TeacherModels.ReadConfig(fixture.ModelFolder) with { VocabSize = 300 };
        using (var other = new TorchCausalLM(LlamaForCausalLM.CreateRandom(config, 5), tokenizer: null, sourceFolder: fixture.ModelFolder))
            other.Save(teacher);
        var outFolder = Path.Combine(_root, "never");

        var run = await CliRunner.RunAsync("distill", "--student", student, "--teacher", teacher, "--text", fixture.TextFile, "--out", outFolder);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(teacher).And.Contain(student).And.Contain("vocabulary").And.Contain("300").And.Contain("512");
        Directory.Exists(outFolder).Should().BeFalse();
    }

    [Fact]
    public async Task Distill_TeacherWithOtherTokenIdsOfTheSameSize_FailsNamingBothFolders()
    {
        var student = PrunedStudent();
        var teacher = Path.Combine(_root, "teacher-swapped");
        CopyFolder(fixture.ModelFolder, teacher);
        // Same size, same special tokens: only the ids of 'e' and 'o' are exchanged.
        var file = Path.Combine(teacher, "tokenizer.json");
        var tokenizer = JsonNode.Parse(File.ReadAllText(file))!;
        var vocab = tokenizer["model"]!["vocab"]!.AsObject();
        var (e, o) = (vocab["e"]!.GetValue<int>(), vocab["o"]!.GetValue<int>());
        vocab["e"] = o;
        vocab["o"] = e;
        File.WriteAllText(file, tokenizer.ToJsonString());

        var run = await CliRunner.RunAsync("distill", "--student", student, "--teacher", teacher, "--text", fixture.TextFile, "--out", Path.Combine(_root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(teacher).And.Contain(student).And.Contain("different tokenizers").And.Contain("line 1");
    }

    [Fact]
    public void CheckSameTokenizer_SameTokenizerInAnotherFormatting_Passes()
    {
        var teacher = Path.Combine(_root, "teacher-reformatted");
        CopyFolder(fixture.ModelFolder, teacher);
        var file = Path.Combine(teacher, "tokenizer.json");
        File.WriteAllText(file, JsonNode.Parse(File.ReadAllText(file))!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.ReadAllBytes(file).Should().NotEqual(File.ReadAllBytes(Path.Combine(fixture.ModelFolder, "tokenizer.json")));
        var student = Pip.Tokenization.HfTokenizer.Load(fixture.ModelFolder);
        var lines = TrainingText.ReadLines(fixture.TextFile, null, 0);

        var check = () => TeacherModels.CheckSameTokenizer(teacher, fixture.ModelFolder, student, lines, NullLogger.Instance);

        check.Should().NotThrow();
    }

    [Fact]
    public async Task Distill_InvalidOptions_ListsEveryProblemWithItsOption()
    {
        var outFolder = Path.Combine(_root, "x");
        var run = await CliRunner.RunAsync("distill", "--student", fixture.ModelFolder, "--teacher", fixture.ModelFolder, "--text", fixture.TextFile, "--out", outFolder,
            "--alpha", "1.5", "--temperature", "0", "--steps", "10", "--warmup", "10", "--lr", "0", "--time-limit", "-1");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("5 problems").And.Contain("--alpha").And.Contain("--temperature").And.Contain("--warmup (10)")
            .And.Contain("--steps (10)").And.Contain("--lr").And.Contain("--time-limit");
        Directory.Exists(outFolder).Should().BeFalse();
    }

    [Fact]
    public async Task Distill_OutputIsTheTeacherFolder_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("distill", "--student", PrunedStudent(), "--teacher", fixture.ModelFolder, "--text", fixture.TextFile,
            "--out", fixture.ModelFolder, "--overwrite");

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("is the teacher folder");
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
