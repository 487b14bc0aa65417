"""The main window: open a graph file or a template and see its per-layer analysis.

The node-graph editor grows inside this window; for now it shows the analysis table
of the opened design, with totals and problems in the status bar.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox

from engine import Graph, GraphError, Report, analyze, human_count
from widgets.summary import SummaryTable

from .templates import template_files

FILE_FILTER = "Convas graphs (*.convas.json *.json);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Convas")
        self.resize(1000, 700)
        self.graph: Graph | None = None
        self.report: Report | None = None
        self.table = SummaryTable(self)
        self.setCentralWidget(self.table)
        self.totals = QLabel()
        self.statusBar().addPermanentWidget(self.totals)
        self._build_menus()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._ask_open)
        file_menu.addAction(open_action)
        templates = file_menu.addMenu("Open &template")
        for f in template_files():
            action = QAction(f.name.removesuffix(".convas.json"), self)
            action.triggered.connect(lambda _=False, f=f: self.open_text(f.read_text("utf-8"),
                                                                         f.name))
            templates.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open graph", "", FILE_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> bool:
        try:
            graph = Graph.load(path)
        except GraphError as exc:
            QMessageBox.warning(self, "Cannot open graph", f"{Path(path).name}:\n\n{exc}")
            return False
        self.show_graph(graph, Path(path).name)
        return True

    def open_text(self, text: str, source: str) -> bool:
        try:
            graph = Graph.loads(text, source)
        except GraphError as exc:
            QMessageBox.warning(self, "Cannot open graph", str(exc))
            return False
        self.show_graph(graph, source)
        return True

    def show_graph(self, graph: Graph, title: str) -> None:
        self.graph = graph
        self.report = analyze(graph)
        self.table.set_rows([info.to_dict() for info in self.report.nodes.values()])
        self.setWindowTitle(f"{graph.name} — {title} — Convas")
        r = self.report
        text = f"{r.total_params:,} params ({human_count(r.total_params)}) · " \
               f"{human_count(r.total_macs)} MACs"
        if r.ok:
            text += " · " + r.memory().describe().split(" (")[0]
        else:
            text += f" · {len(r.errors)} problem(s)"
            self.statusBar().showMessage(str(r.errors[0]))
        self.totals.setText(text)
