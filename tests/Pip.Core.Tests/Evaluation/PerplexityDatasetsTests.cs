using Pip.Evaluation;

namespace Pip.Core.Tests.Evaluation;

public sealed class PerplexityDatasetsTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-ppl-datasets-" + Guid.NewGuid().ToString("N"));

    public PerplexityDatasetsTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void WikiTextRows_TokensFileLayout_KeepsNewlinesAndBlanksBlankLines()
    {
        // The layout of wiki.test.tokens: a blank line " ", a heading, a blank line, a paragraph, a blank line.
        var rows = PerplexityDatasets.WikiTextRows(" \n = Robert <unk> = \n \n Robert <unk> is an actor . \n \n");

        rows.Should().Equal("", " = Robert <unk> = \n", "", " Robert <unk> is an actor . \n", "");
    }

    [Fact]
    public void LoadWikiText2_File_JoinsRowsWithTwoNewlinesLikeHuggingFaceDatasets()
    {
        var path = Write("wiki.test.tokens", " \n = Title = \n \n Body one . \n Body two . \n");

        var text = PerplexityDatasets.LoadWikiText2(path);

        // "\n\n".join(["", " = Title = \n", "", " Body one . \n", " Body two . \n"])
        text.Text.Should().Be("\n\n = Title = \n\n\n\n\n Body one . \n\n\n Body two . \n");
        text.Name.Should().Be(PerplexityDatasets.WikiText2Name);
        text.Rows.Should().Be(5);
        text.SourcePath.Should().Be(Path.GetFullPath(path));
        text.Join.Should().Contain("\\n\\n");
    }

    [Fact]
    public void WikiTextRows_CrLfAndNoFinalNewline_ReadAsPythonUniversalNewlines()
    {
        var rows = PerplexityDatasets.WikiTextRows(" a \r\n\r\n b \r c");

        rows.Should().Equal(" a \n", "", " b \n", " c");
    }

    [Fact]
    public void LoadPtb_DefaultSeparator_StripsLinesAndJoinsWithTwoNewlines()
    {
        var path = Write("ptb.valid.txt", " consumers may want to move \n the N stock <unk> \n");

        var text = PerplexityDatasets.LoadPtb(path);

        text.Text.Should().Be("consumers may want to move\n\nthe N stock <unk>");
        text.Name.Should().Be(PerplexityDatasets.PtbName);
        text.Rows.Should().Be(2);
        text.Join.Should().Contain("LLM-Pruner");
    }

    [Fact]
    public void LoadPtb_GptqSeparator_JoinsWithOneSpace()
    {
        var path = Write("ptb.valid.txt", " a b \n c d \n");

        PerplexityDatasets.LoadPtb(path, PerplexityDatasets.GptqPtbSeparator).Text.Should().Be("a b c d");
    }

    [Fact]
    public void LoadWikiText2_MissingFile_ThrowsFileNotFoundNamingTheFile()
    {
        var path = Path.Combine(_folder, "absent", "wiki.test.tokens");

        var act = () => PerplexityDatasets.LoadWikiText2(path);

        act.Should().Throw<FileNotFoundException>().WithMessage($"WikiText-2 file '{path}' does not exist.");
    }

    [Fact]
    public void LoadPtb_Folder_ThrowsFileNotFoundSayingItIsAFolder()
    {
        var act = () => PerplexityDatasets.LoadPtb(_folder);

        act.Should().Throw<FileNotFoundException>().WithMessage($"PTB file '{_folder}' is a folder*");
    }

    [Fact]
    public void LoadWikiText2_BlankFile_ThrowsInvalidData()
    {
        var path = Write("blank.tokens", " \n\n \n");

        var act = () => PerplexityDatasets.LoadWikiText2(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*'{path}' holds no text*");
    }

    [Theory]
    [InlineData("wikitext2", "WikiText-2")]
    [InlineData("ptb", "PTB")]
    [InlineData("c4", "c4")]
    public void DisplayName_KnownAndUnknown_GivesPaperNames(string name, string expected) =>
        PerplexityDatasets.DisplayName(name).Should().Be(expected);
}
