using System.Text.Json;
using Pip.Cli.Infrastructure;

namespace Pip.Cli.Tests.Infrastructure;

public sealed class SettingsFileTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-settings-tests-" + Guid.NewGuid().ToString("N"));

    public SettingsFileTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Run_SettingsFile_SuppliesOptionsWithPathsRelativeToTheFile()
    {
        var folder = Path.Combine(_root, "settings");
        var settings = Write(Path.Combine(folder, "run.json"), """{ "command": "create-random", "out": "made", "seed": 5, "json": true, "Preset": "tiny" }""");

        var run = await CliRunner.RunAsync("create-random", "--settings", settings);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        json.RootElement.GetProperty("model").GetString().Should().Be(Path.Combine(folder, "made"));
        json.RootElement.GetProperty("seed").GetInt64().Should().Be(5);
        File.Exists(Path.Combine(folder, "made", "config.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Run_OptionOnCommandLineAndInSettings_CommandLineWinsFileBeatsDefault()
    {
        var settings = Write(Path.Combine(_root, "run.json"), """{ "seed": 5 }""");
        var fromFile = Path.Combine(_root, "from-file");
        var fromLine = Path.Combine(_root, "from-line");
        var fromDefault = Path.Combine(_root, "from-default");

        var a = await CliRunner.RunAsync("create-random", "--settings", settings, "--out", fromFile, "--json");
        var b = await CliRunner.RunAsync("create-random", "--seed", "9", "--settings", settings, "--out", fromLine, "--json");
        var c = await CliRunner.RunAsync("create-random", "--out", fromDefault, "--json");

        Seed(a).Should().Be(5);
        Seed(b).Should().Be(9);
        Seed(c).Should().Be(0);
        Effective(fromFile).GetProperty("seed").GetInt64().Should().Be(5);
        Effective(fromLine).GetProperty("seed").GetInt64().Should().Be(9);
        Effective(fromDefault).GetProperty("seed").GetInt64().Should().Be(0);
    }

    [Fact]
    public async Task Run_UnknownKey_FailsNamingFileAndKey()
    {
        var settings = Write(Path.Combine(_root, "bad.json"), """{ "seed": 5, "sede": 6 }""");

        var run = await CliRunner.RunAsync("create-random", "--settings", settings, "--out", Path.Combine(_root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(settings).And.Contain("unknown key 'sede'").And.Contain("seed");
        Directory.Exists(Path.Combine(_root, "never")).Should().BeFalse();
    }

    [Theory]
    [InlineData("""{ "command": "prune" }""", "\"command\" is 'prune'")]
    [InlineData("""{ "seed": { "a": 1 } }""", "must be a single value")]
    [InlineData("""{ "tokenizer-corpus": "a.txt", "tokenizer_corpus": "b.txt" }""", "both set --tokenizer-corpus")]
    [InlineData("""{ "settings": "other.json" }""", "unknown key 'settings'")]
    [InlineData("""{ "seed": 5""", "is not a JSON object")]
    public async Task Run_BadSettingsFile_FailsWithBadInputNamingTheFile(string content, string expected)
    {
        var settings = Write(Path.Combine(_root, "bad.json"), content);

        var run = await CliRunner.RunAsync("create-random", "--settings", settings, "--out", Path.Combine(_root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain(settings).And.Contain(expected);
    }

    [Fact]
    public async Task Run_MissingSettingsFile_FailsWithBadInput()
    {
        var run = await CliRunner.RunAsync("create-random", "--settings", Path.Combine(_root, "none.json"), "--out", Path.Combine(_root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("none.json").And.Contain("does not exist");
    }

    [Fact]
    public async Task Run_BadValueInSettingsFile_IsAParseErrorOfTheOption()
    {
        var settings = Write(Path.Combine(_root, "bad.json"), """{ "preset": "huge" }""");

        var run = await CliRunner.RunAsync("create-random", "--settings", settings, "--out", Path.Combine(_root, "never"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("'huge' not recognized").And.Contain($"settings file '{settings}' gave: --preset=huge");
    }

    [Fact]
    public async Task Run_RequiredOptionOnlyInSettingsFile_Satisfies()
    {
        var settings = Write(Path.Combine(_root, "run.json"), $$"""{ "out": {{JsonSerializer.Serialize(Path.Combine(_root, "required"))}} }""");

        var run = await CliRunner.RunAsync("create-random", "--settings", settings);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        File.Exists(Path.Combine(_root, "required", "config.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Run_EffectiveSettings_AreWrittenAndRepeatTheRunExactly()
    {
        var first = Path.Combine(_root, "first");
        var second = Path.Combine(_root, "second");

        var run = await CliRunner.RunAsync("create-random", "--out", first, "--seed", "11", "--dtype", "bfloat16", "--json");
        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        var effective = Effective(first);
        effective.GetProperty("command").GetString().Should().Be("create-random");
        effective.GetProperty("out").GetString().Should().Be(first);
        effective.GetProperty("preset").GetString().Should().Be("tiny");
        effective.GetProperty("seed").GetInt64().Should().Be(11);
        effective.GetProperty("dtype").GetString().Should().Be("bfloat16");
        effective.GetProperty("json").GetBoolean().Should().BeTrue();
        effective.TryGetProperty("overwrite", out _).Should().BeFalse("replacing output must be asked for on the command line each time");
        effective.TryGetProperty("settings", out _).Should().BeFalse();
        Directory.GetFiles(first, ".settings.json*").Should().BeEmpty("the file is written through a temporary file");

        var again = await CliRunner.RunAsync("create-random", "--settings", Path.Combine(first, SettingsFile.FileName), "--out", second);

        again.ExitCode.Should().Be(ExitCodes.Success, again.Error);
        File.ReadAllBytes(Path.Combine(second, "model.safetensors")).Should().Equal(File.ReadAllBytes(Path.Combine(first, "model.safetensors")));
        Effective(second).GetProperty("seed").GetInt64().Should().Be(11);
    }

    [Fact]
    public async Task Run_FailedRun_WritesNoSettings()
    {
        var existing = Path.Combine(_root, "existing");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "keep.txt"), "x");

        var run = await CliRunner.RunAsync("create-random", "--out", existing);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        Directory.GetFileSystemEntries(existing).Select(Path.GetFileName).Should().Equal("keep.txt");
    }

    [Fact]
    public void Effective_EvalDefaults_RecordsEveryOptionWithDefaultsAndAbsolutePaths()
    {
        var root = PipCli.BuildRootCommand(new CliContext { Out = TextWriter.Null, Error = TextWriter.Null });
        var parsed = root.Parse(["eval", "--text", "corpus.txt", "--stride", "16"]);

        var json = SettingsFile.Effective(parsed);

        json["command"]!.GetValue<string>().Should().Be("eval");
        json["text"]!.GetValue<string>().Should().Be(Path.GetFullPath("corpus.txt"));
        json["window"]!.GetValue<long>().Should().Be(512);
        json["stride"]!.GetValue<long>().Should().Be(16);
        json["device"]!.GetValue<string>().Should().Be("cpu");
        json["json"]!.GetValue<bool>().Should().BeFalse();
        json.ContainsKey("model").Should().BeFalse("an unset optional value is left out");
        json.ContainsKey("log-level").Should().BeFalse();
    }

    [Fact]
    public void Merge_ValueStartingWithDash_IsKeptAsAValue()
    {
        var settings = Write(Path.Combine(_root, "run.json"), """{ "prompt": "-not an option", "max-new-tokens": 3 }""");
        var root = PipCli.BuildRootCommand(new CliContext { Out = TextWriter.Null, Error = TextWriter.Null });
        string[] args = ["generate", "--settings", settings];

        var merged = SettingsFile.Merge(root.Parse(args), args);
        var parsed = root.Parse(merged!.Args);

        parsed.Errors.Should().BeEmpty();
        parsed.GetValue<string>("--prompt").Should().Be("-not an option");
        parsed.GetValue<int>("--max-new-tokens").Should().Be(3);
    }

    private static string Write(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private static long Seed(CliRun run)
    {
        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        using var json = JsonDocument.Parse(run.Out);
        return json.RootElement.GetProperty("seed").GetInt64();
    }

    private static JsonElement Effective(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, SettingsFile.FileName)));
        return json.RootElement.Clone();
    }
}
