namespace Pip.Cli.Tests;

public sealed class PipCliTests
{
    [Fact]
    public async Task RunAsync_NoCommand_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync();

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--help");
    }

    [Fact]
    public async Task RunAsync_Help_ListsEveryCommand()
    {
        var run = await CliRunner.RunAsync("--help");

        run.ExitCode.Should().Be(ExitCodes.Success);
        run.Out.Should().Contain("create-random").And.Contain("inspect").And.Contain("eval").And.Contain("generate").And.Contain("prune");
    }
}
